"""The Kubernetes manifests under deploy/kubernetes/, rendered and checked without a cluster.

How they are rendered: kustomize is not installed on every machine that runs these tests (no
Debian package ships it, and nothing outside the package registries can be downloaded), so
this module carries a small renderer, :func:`kustomize_build`, for exactly the kustomize features
the manifests use: ``resources`` (files and kustomization folders), ``components``, ``namespace``,
``patches`` (strategic merge, by the patch's kind and name), ``replicas``, and
``configMapGenerator`` / ``secretGenerator`` (literals and files; create and merge) with
kustomize's content-hash name suffix and the references to it rewritten. Anything else in a
kustomization makes it fail instead of rendering something different from kustomize. Where
``kubectl`` (which embeds kustomize) is on PATH, a test renders every overlay with it too and
requires the very same objects.

What is checked on the rendered objects:

- every object of a built-in kind validates strictly against the Kubernetes OpenAPI schemas
  (``kubernetes-validate``) of the oldest and the newest release we target;
- KEDA ScaledObjects, whose schema is not packaged, structurally: apiVersion, a scaleTargetRef
  to a Deployment of the same overlay, Prometheus triggers with serverAddress (the Prometheus
  Service of the overlay), query and threshold, and queries naming only metrics the services
  export (their declared families, as their /metrics lists them);
- each service of ``discover_services()``: ports, the native gRPC probes on its grpc.health.v1
  name, resources, the restricted security context, the headless Service with the metrics port,
  and the PodDisruptionBudget; selectors that select; references to ConfigMaps and Secrets that
  are rendered or documented as created by hand;
- MinIO in distributed mode, PostgreSQL with its volume, GPU scheduling in production only;
- the gateway: two or more replicas with HTTP probes, its login from the PostgreSQL Secret and no
  secret in its ConfigMap, the services by DNS through their headless Services, the tokens
  Secret on a directory mount, a drain inside the grace period, its Services, budget and
  scrape job, an Ingress that routes the page and the API but not /metrics, with the gateway's
  body limit and no buffering, TLS in production, presigned URLs for MinIO's Ingress host; and
  its environment loaded by the gateway's own settings classes.

Each validator has a test that feeds it a broken object and expects it to object.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from services.common.registry import ServiceSpec, discover_services
from test_deploy_files import exported_metric_names, promql_metric_names, recorded_metric_names

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAYS = {"workstation": KUBERNETES / "overlays" / "workstation",
            "production": KUBERNETES / "overlays" / "production"}
README = ROOT / "deploy" / "README.md"
PROMETHEUS_K8S = ROOT / "deploy" / "prometheus" / "prometheus-kubernetes.yml"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
NAMESPACE = "neuromesh"
SERVICES = discover_services()
AUTOSCALED = {"simulation", "segmentation"}
GPU_SERVICES = {"simulation", "segmentation"}
# The oldest release these manifests target (native gRPC probes are GA since 1.27; 1.30 is the
# oldest still maintained upstream when written) and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())


def yaml_documents(path: Path) -> list[dict]:
    # YAML 1.2, as kustomize reads it ("on", "yes" stay strings)
    return [d for d in YAML(typ="safe", pure=True).load_all(path.read_text()) if d is not None]


# ---------------------------------------------------------------------------- the renderer

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "namespace", "resources", "components", "patches", "replicas",
                    "configMapGenerator", "secretGenerator"}
SUPPORTED_GENERATOR_FIELDS = {"name", "behavior", "literals", "files"}
# Kinds with no namespace: the namespace transformer leaves them alone.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
                  "StorageClass", "PriorityClass", "IngressClass", "RuntimeClass", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "APIService"}
# Strategic-merge keys of the built-in list fields our patches reach (from the Kubernetes API's
# patchMergeKey tags); every other list is replaced whole, as it is for custom resources.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
              "volumes": "name", "volumeMounts": "mountPath", "ports": "containerPort",
              "imagePullSecrets": "name", "topologySpreadConstraints": "topologyKey"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
SCALABLE_KINDS = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}


class UnsupportedKustomization(Exception):
    """A kustomization uses a feature :func:`kustomize_build` does not render."""


@dataclass
class Resource:
    obj: dict
    needs_hash: bool = False     # made by a generator: gets kustomize's content-hash suffix

    @property
    def kind(self) -> str:
        return self.obj["kind"]

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]


@dataclass
class Build:
    resources: list[Resource] = field(default_factory=list)

    def find(self, kind: str, name: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind and r.name == name]


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{directory} has no kustomization.yaml")


def local_file(directory: Path, relative: str) -> Path:
    """A file a kustomization reads: kustomize only loads files in or below its own folder."""
    path = (directory / relative).resolve()
    if directory.resolve() not in path.parents:
        raise UnsupportedKustomization(f"{directory}: {relative} is outside the kustomization's folder")
    return path


def kustomize_build(directory: Path) -> list[dict]:
    """The objects ``kustomize build directory`` prints, for the features listed in the docstring."""
    build = _build(directory, Build(), component=False)
    _add_hash_suffixes(build)
    return [r.obj for r in build.resources]


def _build(directory: Path, build: Build, *, component: bool) -> Build:
    kustomization = yaml_documents(kustomization_file(directory))[0]
    unknown = set(kustomization) - SUPPORTED_FIELDS
    if unknown:
        raise UnsupportedKustomization(f"{directory}: kustomize fields {sorted(unknown)} are not rendered here")
    expected_kind = "Component" if component else "Kustomization"
    if kustomization.get("kind", "Kustomization") != expected_kind:
        raise UnsupportedKustomization(f"{directory} is a {kustomization.get('kind')}, used as a {expected_kind}")
    # A kustomization starts from nothing; a component works on what includes it.
    own = build if component else Build()
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            own.resources += _build(path, Build(), component=False).resources
        else:
            own.resources += [Resource(obj) for obj in yaml_documents(local_file(directory, entry))]
    # kustomize's order: a kustomization's own generators run before its components (which can
    # merge into what they generated, not the other way round), its own patches and other
    # transformers after them.
    for kind, entries in (("ConfigMap", kustomization.get("configMapGenerator", [])),
                          ("Secret", kustomization.get("secretGenerator", []))):
        for entry in entries:
            _generate(directory, own, kind, entry)
    for entry in kustomization.get("components", []):
        own = _build(directory / entry, own, component=True)
    for patch in kustomization.get("patches", []):
        _apply_patch(directory, own, patch)
    if "namespace" in kustomization:
        for resource in own.resources:
            if resource.kind not in CLUSTER_SCOPED:
                resource.obj["metadata"]["namespace"] = kustomization["namespace"]
    for replica in kustomization.get("replicas", []):
        targets = [r for r in own.resources if r.kind in SCALABLE_KINDS and r.name == replica["name"]]
        if not targets:
            raise UnsupportedKustomization(f"{directory}: replicas for {replica['name']}, which is not rendered")
        for target in targets:
            target.obj["spec"]["replicas"] = replica["count"]
    return own


def _generate(directory: Path, build: Build, kind: str, entry: dict) -> None:
    unknown = set(entry) - SUPPORTED_GENERATOR_FIELDS
    if unknown:
        raise UnsupportedKustomization(f"{directory}: generator fields {sorted(unknown)} are not rendered here")
    data: dict[str, str] = {}
    for literal in entry.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    for source in entry.get("files", []):
        key, _, path = source.rpartition("=")
        path = local_file(directory, path)
        data[key or path.name] = path.read_text()
    if kind == "Secret":
        data = {k: kustomize_base64(v) for k, v in data.items()}
    behavior = entry.get("behavior", "create")
    existing = build.find(kind, entry["name"])
    if behavior == "create":
        if existing:
            raise UnsupportedKustomization(f"{directory}: {kind} {entry['name']} generated twice")
        obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": entry["name"]}, "data": data}
        if kind == "Secret":
            obj["type"] = "Opaque"
        build.resources.append(Resource(obj, needs_hash=True))
    elif behavior in ("merge", "replace"):
        if len(existing) != 1:
            raise UnsupportedKustomization(f"{directory}: no single {kind} {entry['name']} to {behavior}")
        target = existing[0].obj
        target["data"] = {**target.get("data", {}), **data} if behavior == "merge" else data
    else:
        raise UnsupportedKustomization(f"{directory}: generator behavior {behavior!r}")


def kustomize_base64(value: str) -> str:
    """A Secret value as kustomize writes it: base64, and once that reaches 70 characters, cut
    into lines of 70, each ending with a newline (the hash suffix is computed on this text)."""
    encoded = base64.b64encode(value.encode()).decode()
    if len(encoded) < 70:
        return encoded
    return "".join(encoded[i:i + 70] + "\n" for i in range(0, len(encoded), 70))


def _is_builtin(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def strategic_merge(target: dict, patch: dict, *, builtin: bool) -> None:
    """Merge ``patch`` into ``target`` in place: maps recursively, ``null`` deletes, lists of
    built-in kinds by their merge key (MERGE_KEYS), every other list replaced."""
    for key, value in patch.items():
        if key.startswith("$"):
            raise UnsupportedKustomization(f"patch directive {key} is not rendered here")
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            strategic_merge(target[key], value, builtin=builtin)
        elif (isinstance(value, list) and builtin and key in MERGE_KEYS and isinstance(target.get(key), list)
              and all(isinstance(item, dict) for item in value)):
            # kustomize's order: the patch's items (merged into their originals) first, then the
            # originals the patch does not name
            merge_key = MERGE_KEYS[key]
            originals = {t.get(merge_key): t for t in target[key]}
            merged = []
            for item in value:
                original = copy.deepcopy(originals.get(item.get(merge_key), {}))
                strategic_merge(original, item, builtin=builtin)
                merged.append(original)
            named = {item.get(merge_key) for item in value}
            target[key] = merged + [t for t in target[key] if t.get(merge_key) not in named]
        else:
            target[key] = copy.deepcopy(value)


def _apply_patch(directory: Path, build: Build, entry: dict) -> None:
    if set(entry) != {"path"}:
        raise UnsupportedKustomization(f"{directory}: patch {entry}: only `path:` patches are rendered here")
    for patch in yaml_documents(local_file(directory, entry["path"])):
        if not isinstance(patch, dict):
            raise UnsupportedKustomization(f"{directory}: {entry['path']} is not a strategic-merge patch")
        targets = build.find(patch["kind"], patch["metadata"]["name"])
        if len(targets) != 1:
            raise UnsupportedKustomization(f"{directory}: {entry['path']} matches {len(targets)} objects")
        strategic_merge(targets[0].obj, patch, builtin=_is_builtin(patch["apiVersion"]))


def kustomize_hash(obj: dict) -> str:
    """kustomize's name suffix for a generated ConfigMap or Secret: SHA-256 of a JSON encoding
    (Go's encoding/json: sorted keys, no spaces, HTML characters escaped) of its kind, data (and
    a Secret's type) and an empty name (kustomize 5 hashes before it names: the same data gets
    the same suffix under any name), the first 10 hex digits with 0, 1, 3, a, e swapped for
    letters so that the suffix never reads as a number or a word."""
    encoded = {"kind": obj["kind"], "name": "", "data": obj.get("data", {})}
    if obj["kind"] == "Secret":
        encoded["type"] = obj.get("type", "")
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def pod_specs(obj: dict) -> list[dict]:
    if obj["kind"] in WORKLOAD_KINDS:
        return [obj["spec"]["template"]["spec"]]
    if obj["kind"] == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if obj["kind"] == "Pod":
        return [obj["spec"]]
    return []


def config_references(pod: dict) -> list[tuple[str, dict, str]]:
    """(kind, the mapping holding the name, the name's key) of every ConfigMap/Secret reference."""
    refs = []
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for source in container.get("envFrom", []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in source:
                    refs.append((kind, source[key], "name"))
        for env in container.get("env", []):
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if key in env.get("valueFrom", {}):
                    refs.append((kind, env["valueFrom"][key], "name"))
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            refs.append(("ConfigMap", volume["configMap"], "name"))
        if "secret" in volume:
            refs.append(("Secret", volume["secret"], "secretName"))
        for source in volume.get("projected", {}).get("sources", []):
            for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                if key in source:
                    refs.append((kind, source[key], "name"))
    return refs


def _add_hash_suffixes(build: Build) -> None:
    renamed = {}
    for resource in build.resources:
        if resource.needs_hash:
            new = f"{resource.name}-{kustomize_hash(resource.obj)}"
            renamed[(resource.kind, resource.name)] = new
            resource.obj["metadata"]["name"] = new
    for resource in build.resources:
        for pod in pod_specs(resource.obj):
            for kind, holder, key in config_references(pod):
                holder[key] = renamed.get((kind, holder[key]), holder[key])


# ---------------------------------------------------------------------------- rendered objects

def object_id(obj: dict) -> tuple[str, str, str, str]:
    metadata = obj["metadata"]
    return obj["apiVersion"], obj["kind"], metadata.get("namespace", ""), metadata["name"]


@lru_cache(maxsize=None)
def _rendered(name: str) -> tuple[dict, ...]:
    return tuple(kustomize_build(OVERLAYS[name] if name in OVERLAYS else BASE))


def rendered(name: str) -> list[dict]:
    """A fresh copy of an overlay's objects (tests may break them)."""
    return copy.deepcopy(list(_rendered(name)))


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def containers_of(workload: dict) -> list[dict]:
    return pod_specs(workload)[0]["containers"]


def test_registry_has_services_and_overlays_exist():
    assert SERVICES, "discover_services() found no service"
    for path in (BASE, *OVERLAYS.values()):
        assert kustomization_file(path).is_file()


@pytest.mark.parametrize("name", ["base", *OVERLAYS])
def test_renderer_matches_kubectl_kustomize(name):
    """The renderer against the real kustomize, where kubectl (which embeds it) is installed."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the manifests are rendered by this module's renderer alone")
    directory = OVERLAYS.get(name, BASE)
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    theirs = {object_id(o): o for o in YAML(typ="safe", pure=True).load_all(result.stdout) if o}
    ours = {object_id(o): o for o in rendered(name)}
    assert sorted(ours) == sorted(theirs)
    for key, obj in ours.items():
        assert obj == theirs[key], f"{key} differs from kubectl kustomize's"


def test_renderer_refuses_what_it_does_not_render(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(UnsupportedKustomization, match="namePrefix"):
        kustomize_build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - ../outside.yaml\n")
    (tmp_path.parent / "outside.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    with pytest.raises(UnsupportedKustomization, match="outside"):
        kustomize_build(tmp_path)


def test_renderer_merges_patches_generates_and_hashes(tmp_path):
    # The behaviours the overlays rely on, on a tiny example with known results.
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "kustomization.yaml").write_text(
        "resources: [d.yaml]\nconfigMapGenerator:\n  - name: settings\n    literals: [A=1, B=2]\n")
    (tmp_path / "base" / "d.yaml").write_text("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
        - name: c
          image: i:1
          env: [{name: X, value: "1"}, {name: Y, value: "2"}]
          envFrom: [{configMapRef: {name: settings}}]
""")
    (tmp_path / "kustomization.yaml").write_text(
        "namespace: ns\nresources: [base]\npatches: [{path: p.yaml}]\nreplicas: [{name: d, count: 3}]\n"
        "configMapGenerator:\n  - name: settings\n    behavior: merge\n    literals: [B=3]\n")
    (tmp_path / "p.yaml").write_text("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
        - name: c
          env: [{name: Y, value: "9"}]
""")
    objects = {o["kind"]: o for o in kustomize_build(tmp_path)}
    deployment, settings = objects["Deployment"], objects["ConfigMap"]
    assert settings["data"] == {"A": "1", "B": "3"}
    assert re.fullmatch(r"settings-[a-z0-9]{10}", settings["metadata"]["name"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "Y", "value": "9"}, {"name": "X", "value": "1"}]   # kustomize's order
    assert container["image"] == "i:1"
    assert container["envFrom"][0]["configMapRef"]["name"] == settings["metadata"]["name"]
    assert deployment["spec"]["replicas"] == 3
    assert {o["metadata"]["namespace"] for o in objects.values()} == {"ns"}


# ---------------------------------------------------------------------------- schema validation

def schema_errors(obj: dict, version: str) -> str | None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {'.'.join(map(str, exc.path))}"
    return None


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", ["base", *OVERLAYS])
def test_builtin_objects_validate_strictly(name, version):
    objects = [o for o in rendered(name) if _is_builtin(o["apiVersion"])]
    assert objects
    errors = [e for e in (schema_errors(o, version) for o in objects) if e]
    assert not errors, "\n".join(errors)


def test_schema_validation_rejects_broken_objects():
    deployment = by_kind(rendered("production"), "Deployment")["decoding"]
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    assert "imagePullPolcy" in schema_errors(misspelt, KUBERNETES_VERSIONS[0])
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "grpc"
    assert schema_errors(wrong_type, KUBERNETES_VERSIONS[0])
    probe = copy.deepcopy(deployment)
    probe["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["serviceName"] = "x"
    assert schema_errors(probe, KUBERNETES_VERSIONS[-1])


# ---------------------------------------------------------------------------- KEDA ScaledObjects

@lru_cache(maxsize=1)
def service_metric_names() -> frozenset[str]:
    """What the services' /metrics expose, from their declared families (servicers imported)."""
    import importlib

    from prometheus_client import REGISTRY, generate_latest

    for spec in SERVICES:
        importlib.import_module(f"{spec.module}.servicer")
    return frozenset(exported_metric_names(generate_latest(REGISTRY).decode()))


def prometheus_service_address(objects: list[dict]) -> str | None:
    service = by_kind(objects, "Service").get("prometheus")
    if service is None:
        return None
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    return f"http://prometheus.{service['metadata']['namespace']}.svc.cluster.local:{port}"


def scaled_object_problems(scaled: dict, objects: list[dict], metric_names: frozenset[str]) -> list[str]:
    """What is wrong with a KEDA ScaledObject, checked against the other objects of its overlay."""
    problems = []
    name = scaled.get("metadata", {}).get("name", "?")
    if scaled.get("apiVersion") != "keda.sh/v1alpha1":
        problems.append(f"{name}: apiVersion {scaled.get('apiVersion')}, expected keda.sh/v1alpha1")
    spec = scaled.get("spec", {})
    target = spec.get("scaleTargetRef", {})
    deployments = by_kind(objects, "Deployment")
    if target.get("kind", "Deployment") != "Deployment" or target.get("name") not in deployments:
        problems.append(f"{name}: scaleTargetRef {target} names no Deployment of the overlay")
    elif "replicas" in deployments[target["name"]]["spec"]:
        problems.append(f"{name}: Deployment {target['name']} sets replicas, which every apply resets")
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        problems.append(f"{name}: replica bounds {low}..{high}")
    triggers = spec.get("triggers") or []
    if not triggers:
        problems.append(f"{name}: no trigger")
    prometheus = prometheus_service_address(objects)
    for trigger in triggers:
        if trigger.get("type") != "prometheus":
            problems.append(f"{name}: trigger type {trigger.get('type')}")
            continue
        metadata = trigger.get("metadata", {})
        for key in ("serverAddress", "query", "threshold"):
            if not metadata.get(key):
                problems.append(f"{name}: trigger {trigger.get('name')} has no {key}")
        if metadata.get("serverAddress") != prometheus:
            problems.append(f"{name}: serverAddress {metadata.get('serverAddress')} is not the overlay's "
                            f"Prometheus ({prometheus})")
        try:
            if float(metadata.get("threshold", "")) <= 0:
                problems.append(f"{name}: threshold must be positive")
        except ValueError:
            problems.append(f"{name}: threshold {metadata.get('threshold')!r} is not a number")
        if not isinstance(metadata.get("threshold"), str):
            problems.append(f"{name}: KEDA reads threshold as a string")
        unknown = promql_metric_names(metadata.get("query", "")) - metric_names
        if unknown:
            problems.append(f"{name}: query names metrics no service exports: {sorted(unknown)}")
        if not promql_metric_names(metadata.get("query", "")):
            problems.append(f"{name}: query names no metric")
    return problems


def test_scaled_objects_are_sound():
    objects = rendered("production")
    scaled = by_kind(objects, "ScaledObject")
    assert set(scaled) == AUTOSCALED
    metric_names = service_metric_names()
    for obj in scaled.values():
        assert scaled_object_problems(obj, objects, metric_names) == []
        job = {t["metadata"]["query"].count(f'job="{obj["metadata"]["name"]}"') for t in obj["spec"]["triggers"]}
        assert 0 not in job, "each query selects its own service's series"
    # production raises the ceiling of the component
    assert {o["spec"]["maxReplicaCount"] for o in scaled.values()} == {8}


def test_scaled_object_check_rejects_broken_ones():
    objects = rendered("production")
    metric_names = service_metric_names()
    good = by_kind(objects, "ScaledObject")["simulation"]

    def broken(change) -> list[str]:
        obj = copy.deepcopy(good)
        change(obj)
        return scaled_object_problems(obj, objects, metric_names)

    assert any("scaleTargetRef" in p for p in broken(lambda o: o["spec"]["scaleTargetRef"].update(name="simulator")))
    assert any("no threshold" in p for p in broken(lambda o: o["spec"]["triggers"][0]["metadata"].pop("threshold")))
    assert any("neuromesh_simulation_synaptic_event_total" in p for p in broken(
        lambda o: o["spec"]["triggers"][0]["metadata"].update(
            query="sum(rate(neuromesh_simulation_synaptic_event_total[1m]))")))
    assert any("serverAddress" in p for p in broken(
        lambda o: o["spec"]["triggers"][0]["metadata"].update(serverAddress="http://prometheus:9091")))
    assert any("apiVersion" in p for p in broken(lambda o: o.update(apiVersion="keda.k8s.io/v1alpha1")))
    with_replicas = copy.deepcopy(objects)
    by_kind(with_replicas, "Deployment")["simulation"]["spec"]["replicas"] = 2
    assert any("sets replicas" in p for p in scaled_object_problems(good, with_replicas, metric_names))


def test_workstation_has_no_autoscaler_or_gpu():
    objects = rendered("workstation")
    assert not by_kind(objects, "ScaledObject")
    for deployment in by_kind(objects, "Deployment").values():
        for container in containers_of(deployment):
            assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
            assert not container["image"].endswith("-cuda")


# ---------------------------------------------------------------------------- the services

def grpc_probe(container: dict, kind: str) -> dict:
    probe = container.get(kind)
    assert probe and "grpc" in probe, f"{container['name']}: {kind} is not a gRPC probe"
    return probe["grpc"]


@pytest.mark.parametrize("overlay", list(OVERLAYS))
@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_every_service_is_deployed(overlay: str, spec: ServiceSpec):
    objects = rendered(overlay)
    deployment = by_kind(objects, "Deployment").get(spec.name)
    assert deployment, f"{overlay} has no Deployment {spec.name}"
    pod = pod_specs(deployment)[0]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": spec.grpc_port, "metrics": spec.metrics_port}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NEUROMESH_SERVICE"] == spec.name
    assert env["NEUROMESH_GRPC_PORT"] == str(spec.grpc_port)
    assert env["NEUROMESH_METRICS_PORT"] == str(spec.metrics_port)
    assert container["image"].startswith(f"neuromesh/{spec.name}:")

    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = grpc_probe(container, kind)
        assert probe == {"port": spec.grpc_port, "service": spec.health_service}, f"{spec.name} {kind}: {probe}"

    resources = container["resources"]
    for key in ("cpu", "memory"):
        assert key in resources["requests"] and key in resources["limits"], f"{spec.name}: no {key} request/limit"
    threads = int(env["NEUROMESH_COMPUTE_THREADS"])
    assert cpu_cores(resources["limits"]["cpu"]) % threads == 0, \
        f"{spec.name}: a CPU limit of {resources['limits']['cpu']} does not fit {threads}-thread requests"

    # the drain (notice, then grace) fits in the termination grace period
    settings = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(
        "neuromesh-settings-"))["data"]
    drain = float(settings["NEUROMESH_DRAIN_NOTICE_S"]) + float(settings["NEUROMESH_DRAIN_GRACE_S"])
    assert pod["terminationGracePeriodSeconds"] > drain
    readiness = container["readinessProbe"]
    assert readiness["periodSeconds"] * readiness.get("failureThreshold", 3) < float(
        settings["NEUROMESH_DRAIN_NOTICE_S"]), "readiness must see NOT_SERVING before new calls are refused"
    assert settings["NEUROMESH_GRPC_HOST"] == "0.0.0.0", "the kubelet's probes come from outside the pod"

    service = by_kind(objects, "Service")[spec.name]
    assert service["spec"]["clusterIP"] == "None", "headless: clients balance over the pods themselves"
    service_ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert service_ports == {"grpc": (spec.grpc_port, "grpc"), "metrics": (spec.metrics_port, "metrics")}
    assert selects(service["spec"]["selector"], deployment)

    pdb = by_kind(objects, "PodDisruptionBudget")[spec.name]
    assert selects(pdb["spec"]["selector"]["matchLabels"], deployment)
    assert "maxUnavailable" in pdb["spec"], "minAvailable would block drains of a single replica"

    replicas = deployment["spec"].get("replicas")
    if overlay == "production" and spec.name in AUTOSCALED:
        assert replicas is None, "the ScaledObject owns the replica count"
    elif overlay == "production":
        assert replicas == 2
    else:
        assert replicas in (None, 1)


def cpu_cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if str(quantity).endswith("m") else float(quantity)


def selects(selector: dict, workload: dict) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    own = workload["spec"]["selector"]["matchLabels"]
    return bool(selector) and selector.items() <= labels.items() and own.items() <= labels.items()


def restricted_problems(workload: dict) -> list[str]:
    """Where a pod falls short of the 'restricted' Pod Security Standard and our own rules
    (read-only root filesystem, the only writable paths on volumes)."""
    name, pod, problems = workload["metadata"]["name"], pod_specs(workload)[0], []
    pod_context = pod.get("securityContext", {})
    if pod_context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: no RuntimeDefault seccomp profile")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
    for container in pod["containers"] + pod.get("initContainers", []):
        context = {**pod_context, **container.get("securityContext", {})}
        where = f"{name}/{container['name']}"
        if context.get("runAsNonRoot") is not True or context.get("runAsUser") == 0:
            problems.append(f"{where}: may run as root")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allows privilege escalation")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: writable root filesystem")
        if context.get("capabilities", {}).get("drop") != ["ALL"] or context.get("capabilities", {}).get("add"):
            problems.append(f"{where}: capabilities not dropped")
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        if "/tmp" not in mounts or "emptyDir" not in volumes.get(mounts["/tmp"], {}):
            problems.append(f"{where}: /tmp is not an emptyDir")
        for path, volume in mounts.items():
            if volume not in volumes and volume not in claims:
                problems.append(f"{where}: mounts {volume} at {path}, which is not declared")
        for key in ("requests", "limits"):
            if "memory" not in container.get("resources", {}).get(key, {}):
                problems.append(f"{where}: no memory {key}")
    return problems


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_every_pod_is_restricted_and_pinned(overlay):
    workloads = [o for o in rendered(overlay) if pod_specs(o)]
    assert len(workloads) >= len(SERVICES) + 3
    problems = [p for w in workloads for p in restricted_problems(w)]
    assert not problems, "\n".join(problems)
    for workload in workloads:
        for container in pod_specs(workload)[0]["containers"]:
            image = container["image"]
            tag = image.rpartition(":")[2] if ":" in image.rsplit("/", 1)[-1] else ""
            assert tag and tag != "latest" and re.search(r"\d", tag), f"{image} is not pinned"


def test_security_check_rejects_a_loose_pod():
    deployment = by_kind(rendered("workstation"), "Deployment")["decoding"]
    assert restricted_problems(deployment) == []
    loose = copy.deepcopy(deployment)
    container = loose["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    container["securityContext"]["capabilities"] = {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    loose["spec"]["template"]["spec"]["volumes"] = []
    problems = " ".join(restricted_problems(loose))
    assert "writable root filesystem" in problems and "capabilities" in problems and "/tmp" in problems


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_references_resolve(overlay):
    """Every ConfigMap and Secret a pod reads is rendered, or is one the README says to create;
    every Secret key read is one the README's command creates."""
    objects = rendered(overlay)
    rendered_names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    documented = documented_secrets()
    for workload in objects:
        for pod in pod_specs(workload):
            for kind, holder, key in config_references(pod):
                name = holder[key]
                if (kind, name) in rendered_names:
                    continue
                assert kind == "Secret" and name in documented, \
                    f"{workload['metadata']['name']} reads {kind} {name}, neither rendered nor documented"
            for container in pod["containers"]:
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        keys = (set(by_name[("Secret", ref["name"])]["data"]) if ("Secret", ref["name"]) in by_name
                                else documented.get(ref["name"], set()))
                        assert ref["key"] in keys, f"{ref['name']} has no key {ref['key']}"
    # ... and the Prometheus StatefulSet reads the hash-suffixed ConfigMaps it mounts
    if ("Service", "prometheus") in {(o["kind"], o["metadata"]["name"]) for o in objects}:
        volumes = {v["name"]: v for v in pod_specs(by_kind(objects, "StatefulSet")["prometheus"])[0]["volumes"]}
        assert volumes["rules"]["configMap"]["name"].startswith("prometheus-rules-")


def documented_secrets() -> dict[str, set[str]]:
    """Secrets the README's commands create, with their keys: `kubectl create secret generic NAME
    --from-literal=KEY=... --from-file=KEY=PATH`, and `kubectl create secret tls NAME` (whose keys
    are tls.crt and tls.key)."""
    secrets: dict[str, set[str]] = {}
    text = README.read_text().replace("\\\n", " ")
    for command in re.findall(r"kubectl[^\n]*create secret generic[^\n]*", text):
        name = re.search(r"create secret generic (\S+)", command).group(1)
        secrets[name] = set(re.findall(r"--from-(?:literal|file)=([A-Za-z0-9_.-]+)=", command))
    for command in re.findall(r"kubectl[^\n]*create secret tls[^\n]*", text):
        secrets[re.search(r"create secret tls (\S+)", command).group(1)] = {"tls.crt", "tls.key"}
    return secrets


def test_production_creates_no_secret_and_workstation_marks_its_own():
    assert not by_kind(rendered("production"), "Secret"), "production Secrets are created by hand, not from git"
    secrets = by_kind(rendered("workstation"), "Secret")
    assert {n.rsplit("-", 1)[0] for n in secrets} == {"neuromesh-s3", "neuromesh-postgres", "neuromesh-gateway-tokens"}
    passwords = [base64.b64decode(v).decode() for s in secrets.values() for k, v in s["data"].items()
                 if "SECRET" in k or "PASSWORD" in k]
    assert passwords and all(p.startswith("change-me") for p in passwords)
    # the gateway's tokens file holds a digest, of a token marked like the passwords
    from gateway.auth import parse_token_file, token_digest

    tokens = next(s for n, s in secrets.items() if n.startswith("neuromesh-gateway-tokens-"))
    assert parse_token_file(base64.b64decode(tokens["data"]["tokens"]).decode()) == \
        {"dev": [token_digest("change-me-gateway-token")]}
    documented = documented_secrets()
    for name in ("neuromesh-s3", "neuromesh-postgres", "neuromesh-gateway-tokens"):
        keys = set(next(s for n, s in secrets.items() if n.startswith(name + "-"))["data"])
        assert documented.get(name) == keys, f"the README's command for {name} should set {sorted(keys)}"


# ---------------------------------------------------------------------------- the gateway

GATEWAY_ROUTED = ("/", "/v1/jobs", "/v1/docs", "/v1/openapi.json", "/static/app.js")
GATEWAY_PRIVATE = ("/metrics", "/healthz", "/readyz")


def nginx_size_bytes(size: str) -> int:
    """An nginx size (``client_max_body_size``, ingress-nginx's proxy-body-size): bytes, or k/m/g
    of 1024. 0 means no limit.

    >>> nginx_size_bytes("1m"), nginx_size_bytes("512k"), nginx_size_bytes("2048")
    (1048576, 524288, 2048)
    """
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", str(size))
    if not match:
        raise ValueError(f"{size!r} is not an nginx size")
    return int(match.group(1)) * 1024 ** " kmg".index(match.group(2).lower() or " ")


def ingress_routes(ingress: dict, path: str) -> bool:
    """Whether a request for ``path`` matches one of the Ingress's rules (Exact, or Prefix by path
    elements as the Ingress API defines it)."""
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            prefix = entry["path"]
            if entry["pathType"] == "Exact" and path == prefix:
                return True
            if entry["pathType"] in ("Prefix", "ImplementationSpecific") and (
                    prefix == "/" or path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/")):
                return True
    return False


def gateway_environment(objects: list[dict]) -> dict[str, str]:
    """The gateway container's environment as the kubelet builds it: the ConfigMaps of envFrom,
    then env values (Secret references given as ``<secret name/key>``)."""
    deployment = by_kind(objects, "Deployment")["gateway"]
    (container,) = containers_of(deployment)
    config_maps = by_kind(objects, "ConfigMap")
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            secret = re.sub(r"-[a-z0-9]{10}$", "", ref["name"])       # without a generator's hash suffix
            env[item["name"]] = f"<{secret}/{ref['key']}>"
    return env


def gateway_problems(objects: list[dict]) -> list[str]:
    """What is wrong with the gateway of one rendered overlay (empty when nothing is)."""
    from sqlalchemy.engine import make_url

    deployments, services = by_kind(objects, "Deployment"), by_kind(objects, "Service")
    deployment = deployments.get("gateway")
    if deployment is None:
        return ["no gateway Deployment"]
    problems = []
    pod = pod_specs(deployment)[0]
    (container,) = pod["containers"]
    env = gateway_environment(objects)
    if (deployment["spec"].get("replicas") or 1) < 2:
        problems.append("the gateway runs a single replica")
    if not container["image"].startswith("neuromesh/gateway:"):
        problems.append(f"image {container['image']}")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if ports != {"http": int(env.get("NEUROMESH_GATEWAY_HTTP_PORT", 8080))} or \
            env.get("NEUROMESH_GATEWAY_HTTP_HOST") != "0.0.0.0":
        problems.append(f"ports {ports}, settings {env.get('NEUROMESH_GATEWAY_HTTP_HOST')}:"
                        f"{env.get('NEUROMESH_GATEWAY_HTTP_PORT')}")
    for kind, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
        probe = container.get(kind, {}).get("httpGet", {})
        if probe.get("path") != path or probe.get("port") not in ("http", ports.get("http")):
            problems.append(f"{kind} should GET {path} on the HTTP port, not {probe}")
    resources = container.get("resources", {})
    for key in ("cpu", "memory"):
        if key not in resources.get("requests", {}) or key not in resources.get("limits", {}):
            problems.append(f"no {key} request and limit")
    # the database: a URL without credentials, the login from the Secret PostgreSQL is set up with
    url = make_url(env.get("NEUROMESH_GATEWAY_DATABASE_URL", "sqlite:///jobs.db"))
    if url.get_backend_name() != "postgresql" or url.password is not None or url.username is not None:
        problems.append(f"the database URL {url!r} should be PostgreSQL's, without a login")
    if "postgres" in by_kind(objects, "StatefulSet") and (url.host, url.port) != (
            "postgres", services["postgres"]["spec"]["ports"][0]["port"]):
        problems.append(f"the database URL points at {url.host}:{url.port}, not the postgres Service")
    expected_login = {"PGUSER": "<neuromesh-postgres/POSTGRES_USER>",
                      "PGPASSWORD": "<neuromesh-postgres/POSTGRES_PASSWORD>",
                      "PGDATABASE": "<neuromesh-postgres/POSTGRES_DB>"}
    if {k: env.get(k) for k in expected_login} != expected_login:
        problems.append("PGUSER, PGPASSWORD and PGDATABASE should come from the Secret neuromesh-postgres")
    if any("PASSWORD" in v or "SECRET" in k for cm in by_kind(objects, "ConfigMap").values()
           if cm["metadata"]["name"].startswith("neuromesh-gateway-") for k, v in cm["data"].items()):
        problems.append("a secret in the gateway's ConfigMap")
    # the services through their headless Services, by DNS
    try:
        endpoints = json.loads(env.get("NEUROMESH_GATEWAY_ENDPOINTS", ""))
    except ValueError:
        endpoints = {}
    namespace = deployment["metadata"].get("namespace", NAMESPACE)
    for spec in SERVICES:
        wanted = f"dns:///{spec.name}.{namespace}.svc.cluster.local:{spec.grpc_port}"
        service = services.get(spec.name, {}).get("spec", {})
        if endpoints.get(spec.name) != wanted:
            problems.append(f"endpoint of {spec.name}: {endpoints.get(spec.name)}, expected {wanted}")
        elif service.get("clusterIP") != "None" or spec.grpc_port not in [p["port"] for p in service.get("ports", [])]:
            problems.append(f"{spec.name} has no headless Service on {spec.grpc_port}")
    # the tokens: a file on a directory mount of the Secret (updates reach it), read-only
    tokens_file = env.get("NEUROMESH_GATEWAY_TOKENS_FILE", "")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mount = next((m for m in container.get("volumeMounts", [])
                  if tokens_file.startswith(m["mountPath"].rstrip("/") + "/")), None)
    secret = volumes.get(mount["name"], {}).get("secret", {}) if mount else {}
    if not (mount and mount.get("readOnly") and "subPath" not in mount and
            secret.get("secretName", "").startswith("neuromesh-gateway-tokens") and
            {"key": "tokens", "path": tokens_file[len(mount["mountPath"].rstrip("/")) + 1:]} in secret.get("items", [])):
        problems.append(f"NEUROMESH_GATEWAY_TOKENS_FILE={tokens_file!r} is not the key `tokens` of the Secret "
                        "neuromesh-gateway-tokens on a read-only directory mount")
    if "NEUROMESH_GATEWAY_TOKENS" in env:
        problems.append("tokens come from the Secret's file, not from the environment")
    # SIGTERM: the preStop pause, open connections, running steps: all inside the grace period
    pause = " ".join(container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", []))
    pause_s = float(re.search(r"sleep (\d+)", pause).group(1)) if re.search(r"sleep (\d+)", pause) else 0
    drain = pause_s + float(env.get("NEUROMESH_GATEWAY_GRACEFUL_SHUTDOWN_S", 5)) + \
        float(env.get("NEUROMESH_GATEWAY_DRAIN_S", 10))
    if pod.get("terminationGracePeriodSeconds", 30) <= drain:
        problems.append(f"terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} does not cover "
                        f"{drain} s of pause and drain")
    if not pause_s:
        problems.append("no preStop pause: the pod closes its socket while it is still in the endpoints")
    # the Services, the budget
    cluster_ip = services.get("gateway", {})
    if cluster_ip.get("spec", {}).get("clusterIP") == "None" or not selects(
            cluster_ip.get("spec", {}).get("selector", {}), deployment):
        problems.append("no ClusterIP Service `gateway` selecting the pods")
    elif {(p["name"], p["targetPort"]) for p in cluster_ip["spec"]["ports"]} != {("http", "http")}:
        problems.append(f"Service gateway ports {cluster_ip['spec']['ports']}")
    headless = services.get("gateway-hl", {}).get("spec", {})
    if headless.get("clusterIP") != "None" or not selects(headless.get("selector", {}), deployment):
        problems.append("no headless Service gateway-hl selecting the pods (Prometheus scrapes each one)")
    scrape = next((j for j in yaml_documents(PROMETHEUS_K8S)[0]["scrape_configs"] if j["job_name"] == "gateway"), {})
    if scrape.get("dns_sd_configs") != [{"names": [f"gateway-hl.{namespace}.svc.cluster.local"], "type": "A",
                                         "port": ports.get("http"), "refresh_interval": "30s"}]:
        problems.append(f"Prometheus does not scrape the gateway pods through gateway-hl: {scrape}")
    pdb = by_kind(objects, "PodDisruptionBudget").get("gateway", {}).get("spec", {})
    if pdb.get("maxUnavailable") != 1 or not selects(pdb.get("selector", {}).get("matchLabels", {}), deployment):
        problems.append("no PodDisruptionBudget of maxUnavailable 1 for the gateway")
    # the Ingress: the page, the API and its files, not the operational routes; the body limit
    # of the gateway; no buffering of event streams; TLS where it has any
    ingress = by_kind(objects, "Ingress").get("gateway")
    if ingress is None:
        return problems + ["no Ingress for the gateway"]
    if not ingress["spec"].get("ingressClassName"):
        problems.append("the Ingress names no ingressClassName")
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            if entry["backend"]["service"] != {"name": "gateway", "port": {"name": "http"}}:
                problems.append(f"an Ingress path goes to {entry['backend']['service']}")
    for path in GATEWAY_ROUTED:
        if not ingress_routes(ingress, path):
            problems.append(f"the Ingress does not route {path}")
    for path in GATEWAY_PRIVATE:
        if ingress_routes(ingress, path):
            problems.append(f"the Ingress exposes {path}")
    annotations = ingress["metadata"].get("annotations", {})
    body = annotations.get("nginx.ingress.kubernetes.io/proxy-body-size", "")
    limit = int(env.get("NEUROMESH_GATEWAY_MAX_BODY_BYTES", 1024 * 1024))
    if not re.fullmatch(r"\d+[kKmMgG]?", body) or nginx_size_bytes(body) != limit:
        problems.append(f"proxy-body-size {body!r} is not NEUROMESH_GATEWAY_MAX_BODY_BYTES={limit}")
    if annotations.get("nginx.ingress.kubernetes.io/proxy-buffering") != "off":
        problems.append("proxy buffering is on: server-sent events would arrive in bursts")
    hosts = {rule.get("host") for rule in ingress["spec"]["rules"]}
    for tls in ingress["spec"].get("tls", []):
        if not tls.get("secretName") or not set(tls.get("hosts", [])) <= hosts:
            problems.append(f"TLS entry {tls} names no Secret or another host")
    # presigned URLs: signed for the host where clients outside reach the object store
    s3_ingress = by_kind(objects, "Ingress").get("minio-s3")
    if s3_ingress is not None:
        (s3_rule,) = s3_ingress["spec"]["rules"]
        secure = any(s3_rule["host"] in tls.get("hosts", []) for tls in s3_ingress["spec"].get("tls", []))
        if env.get("NEUROMESH_GATEWAY_S3_PUBLIC_ENDPOINT") != s3_rule["host"] or \
                env.get("NEUROMESH_GATEWAY_S3_PUBLIC_SECURE") != str(secure).lower():
            problems.append(f"presigned URLs for {env.get('NEUROMESH_GATEWAY_S3_PUBLIC_ENDPOINT')} (secure "
                            f"{env.get('NEUROMESH_GATEWAY_S3_PUBLIC_SECURE')}), MinIO's Ingress serves "
                            f"{s3_rule['host']} (TLS {secure})")
        if nginx_size_bytes(s3_ingress["metadata"]["annotations"].get(
                "nginx.ingress.kubernetes.io/proxy-body-size", "1m")) != 0:
            problems.append("MinIO's Ingress limits bodies: presigned uploads reach 5 GiB")
    return problems


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_the_gateway_is_deployed(overlay):
    objects = rendered(overlay)
    assert gateway_problems(objects) == []
    if overlay == "production":
        # HTTPS on the institution's hosts, with the TLS Secrets the README says to create
        documented = documented_secrets()
        for ingress in by_kind(objects, "Ingress").values():
            (tls,) = ingress["spec"]["tls"]
            assert tls["hosts"] == [ingress["spec"]["rules"][0]["host"]]
            assert documented.get(tls["secretName"]) == {"tls.crt", "tls.key"}, tls["secretName"]


def test_gateway_check_rejects_a_broken_gateway():
    objects = rendered("production")
    assert gateway_problems(objects) == []
    deployment = by_kind(objects, "Deployment")["gateway"]
    deployment["spec"]["replicas"] = 1
    container = containers_of(deployment)[0]
    container["readinessProbe"]["httpGet"]["path"] = "/healthz"
    container["env"] = [e for e in container["env"] if e["name"] != "PGPASSWORD"]
    container["lifecycle"] = {}
    next(m for m in container["volumeMounts"] if m["name"] == "tokens")["subPath"] = "tokens"
    settings = next(o for o in objects if o["metadata"]["name"].startswith("neuromesh-gateway-"))["data"]
    settings["NEUROMESH_GATEWAY_DATABASE_URL"] = "postgresql+psycopg://neuromesh:hunter2@postgres:5432/jobs"
    settings["NEUROMESH_GATEWAY_ENDPOINTS"] = json.dumps({"decoding": "decoding:50051"})
    settings["NEUROMESH_GATEWAY_MAX_BODY_BYTES"] = str(4 * 1024 * 1024)
    settings["NEUROMESH_GATEWAY_S3_PUBLIC_ENDPOINT"] = "minio:9000"
    ingress = by_kind(objects, "Ingress")["gateway"]
    ingress["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Prefix"       # "/" for everything
    del ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"]
    problems = " ".join(gateway_problems(objects))
    for expected in ("single replica", "readinessProbe", "PGPASSWORD", "preStop", "TOKENS_FILE",
                     "without a login", "endpoint of simulation", "proxy-body-size", "exposes /metrics",
                     "buffering", "presigned URLs"):
        assert expected in problems, f"{expected!r} not reported in: {problems}"
    assert gateway_problems([o for o in objects if o["kind"] != "Deployment"]) == ["no gateway Deployment"]


def test_ingress_path_matching_follows_the_ingress_api():
    ingress = {"spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Exact"},
                                                      {"path": "/v1", "pathType": "Prefix"}]}}]}}
    assert ingress_routes(ingress, "/") and ingress_routes(ingress, "/v1") and ingress_routes(ingress, "/v1/jobs")
    assert not ingress_routes(ingress, "/v10") and not ingress_routes(ingress, "/metrics")
    with pytest.raises(ValueError):
        nginx_size_bytes("1 MB")


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_gateway_settings_load_with_the_gateways_own_validation(overlay, monkeypatch):
    # The pod's environment, read by the settings classes `python -m gateway` loads (a bad value
    # stops it with status 2), with the Secret values stood in for.
    from gateway.jobs.settings import load_job_settings
    from gateway.settings import load_gateway_settings
    from services.common.settings import load_settings

    objects = rendered(overlay)
    for name in list(os.environ):
        if name.startswith(("NEUROMESH_", "PG")):
            monkeypatch.delenv(name)
    for name, value in gateway_environment(objects).items():
        monkeypatch.setenv(name, value)
    common, jobs, gateway = load_settings(), load_job_settings(), load_gateway_settings()
    assert common.s3_endpoint == "minio:9000"
    assert gateway.endpoints == {s.name: [f"dns:///{s.name}.{NAMESPACE}.svc.cluster.local:{s.grpc_port}"]
                                 for s in SERVICES}
    assert gateway.max_body_bytes == 1024 * 1024 and str(gateway.tokens_file) == "/etc/neuromesh/gateway/tokens"
    assert jobs.database_url == "postgresql+psycopg://postgres:5432" and jobs.drain_s == 30
    assert gateway.s3_public_secure is (overlay == "production")


# ---------------------------------------------------------------------------- GPUs

@pytest.mark.parametrize("name", sorted(GPU_SERVICES))
def test_production_schedules_the_cuda_variants_on_gpus(name):
    deployment = by_kind(rendered("production"), "Deployment")[name]
    pod = pod_specs(deployment)[0]
    (container,) = pod["containers"]
    assert container["image"] == f"neuromesh/{name}:0.1.0-cuda"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # whole cores, requests equal to limits: Guaranteed QoS, and one call per GPU
    resources = container["resources"]
    assert {k: resources["requests"][k] for k in ("cpu", "memory")} == \
        {k: resources["limits"][k] for k in ("cpu", "memory")}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert cpu_cores(resources["limits"]["cpu"]) // int(env["NEUROMESH_COMPUTE_THREADS"]) == 1
    # the CUDA image is what Dockerfile.cuda builds for this service
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile.cuda").read_text()
    assert f"-t neuromesh/{name}:0.1.0-cuda" in dockerfile
    for other in set(by_kind(rendered("production"), "Deployment")) - GPU_SERVICES:
        other_pod = pod_specs(by_kind(rendered("production"), "Deployment")[other])[0]
        assert "nodeSelector" not in other_pod and "tolerations" not in other_pod


# ---------------------------------------------------------------------------- MinIO, PostgreSQL, Prometheus

@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_minio_runs_distributed(overlay):
    objects = rendered(overlay)
    minio = by_kind(objects, "StatefulSet")["minio"]
    spec = minio["spec"]
    assert spec["replicas"] == 4 and spec["podManagementPolicy"] == "Parallel"
    headless = by_kind(objects, "Service")[spec["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    assert selects(headless["spec"]["selector"], minio)
    (claim,) = spec["volumeClaimTemplates"]
    (container,) = containers_of(minio)
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container["volumeMounts"]
    # the server command names every pod's volume: {0...N-1}, through the headless service, in
    # the namespace the objects land in
    endpoint = next(a for a in container["args"] if a.startswith("http"))
    match = re.fullmatch(r"http://minio-\{0\.\.\.(\d+)\}\.([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local/data",
                         endpoint)
    assert match, endpoint
    assert int(match.group(1)) == spec["replicas"] - 1
    assert match.group(2) == spec["serviceName"] and match.group(3) == minio["metadata"]["namespace"]
    client = by_kind(objects, "Service")["minio"]
    settings = next(o for o in objects if o["metadata"]["name"].startswith("neuromesh-settings-"))["data"]
    assert settings["NEUROMESH_S3_ENDPOINT"] == f"minio:{client['spec']['ports'][0]['port']}"
    job = by_kind(objects, "Job")["minio-create-bucket"]
    assert "mb --ignore-existing" in " ".join(containers_of(job)[0]["args"])
    if overlay == "production":
        anti = pod_specs(minio)[0]["affinity"]["podAntiAffinity"]
        assert "preferredDuringSchedulingIgnoredDuringExecution" not in anti
        assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_postgres_keeps_its_data_and_is_checked_with_pg_isready(overlay):
    objects = rendered(overlay)
    postgres = by_kind(objects, "StatefulSet")["postgres"]
    assert postgres["spec"]["replicas"] == 1
    (claim,) = postgres["spec"]["volumeClaimTemplates"]
    (container,) = containers_of(postgres)
    data_mount = next(m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PGDATA"].startswith(data_mount["mountPath"] + "/"), "PGDATA in a subfolder of the volume"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "pg_isready" in " ".join(container[kind]["exec"]["command"])
    assert container["image"].startswith("postgres:")
    service = by_kind(objects, "Service")[postgres["spec"]["serviceName"]]
    assert service["metadata"]["name"] == "postgres" and service["spec"]["ports"][0]["port"] == 5432


def test_prometheus_scrapes_every_service_through_its_headless_service():
    config = yaml_documents(PROMETHEUS_K8S)[0]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    objects = rendered("production")
    services = by_kind(objects, "Service")
    for spec in SERVICES:
        (sd,) = jobs[spec.name]["dns_sd_configs"]
        assert sd["names"] == [f"{spec.name}.{NAMESPACE}.svc.cluster.local"]
        assert sd["port"] == spec.metrics_port and sd["type"] == "A"
        assert services[spec.name]["metadata"]["namespace"] == NAMESPACE
    # the rules ConfigMap carries every rules file, verbatim
    rules = next(o for o in objects if o["metadata"]["name"].startswith("prometheus-rules-"))["data"]
    assert rules == {p.name: p.read_text() for p in RULES_DIR.glob("*.yml")}
    config_map = next(o for o in objects if o["metadata"]["name"].startswith("prometheus-config-"))["data"]
    assert config_map == {"prometheus.yml": PROMETHEUS_K8S.read_text()}

