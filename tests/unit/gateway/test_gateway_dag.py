"""Job specifications: DAG validation errors name the problem; topological order respects dependencies."""

from __future__ import annotations

import pytest

from gateway.jobs import dag
from gateway.jobs.errors import JobSpecError
from gateway.jobs.spec import ArtifactInput, JobSpec, StepOutputInput, parse_job_spec
from services.common.errors import InvalidArgument

SHA = "ab" * 32


def step(step_id, *uses, **params):
    inputs = {f"in_{i}": {"step": up, "output": "out"} for i, up in enumerate(uses)}
    return {"id": step_id, "service": "reduction", "method": "FitPCA", "params": params, "inputs": inputs}


def job(*steps, **extra):
    return {"tenant": "lab-a", "steps": list(steps), **extra}


def problems(data, **kwargs) -> str:
    with pytest.raises(JobSpecError) as info:
        parse_job_spec(data, **kwargs)
    return str(info.value)


def test_cycle_is_refused_and_named():
    message = problems(job(step("a", "c"), step("b", "a"), step("c", "b"), step("d")))
    assert "steps form a cycle (each feeds the next): a -> b -> c -> a" in message


def test_self_reference_is_a_cycle():
    message = problems(job(step("a", "a")))
    assert "step 'a' uses its own output 'out' (a cycle)" in message


def test_unknown_step_reference_is_refused_with_its_location():
    with pytest.raises(JobSpecError) as info:
        parse_job_spec(job(step("a"), step("b", "missing")))
    assert info.value.problems == [("steps[1].inputs.in_0",
                                    "step 'b' uses output 'out' of step 'missing', which is not in the job")]
    assert info.value.field == "steps[1].inputs.in_0"


def test_duplicate_ids_are_refused():
    message = problems(job(step("a"), step("b"), step("a")))
    assert "steps[2].id: duplicate step id 'a' (also steps[0])" in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(JobSpecError) as info:
        parse_job_spec(job(step("a"), step("a", "nope")))
    assert len(info.value.problems) == 2


def test_empty_job_and_too_many_steps_are_refused():
    assert "a job needs at least one step" in problems(job())
    assert "a job has at most 3 steps; this one has 4" in problems(job(*(step(f"s{i}") for i in range(4))),
                                                                      max_steps=3)
    parse_job_spec(job(*(step(f"s{i}") for i in range(3))), max_steps=3)


@pytest.mark.parametrize("bad_id", ["A", "1a", "a b", "a" * 64, "", "ä"])
def test_step_ids_follow_the_name_pattern(bad_id):
    assert "steps[0].id" in problems(job(step(bad_id)))


def test_inputs_are_artifacts_or_step_outputs():
    assert '{"artifact"' in problems(job({**step("a"), "inputs": {"x": {"key": "k"}}}))
    assert "sha256" in problems(job({**step("a"), "inputs": {"x": {"artifact": {"key": "k", "sha256": "12"}}}}))
    spec = parse_job_spec(job({**step("a"), "inputs": {"x": {"artifact": {"key": "k", "sha256": SHA}}}},
                              step("b", "a")))
    assert isinstance(spec.step("a").inputs["x"], ArtifactInput)
    assert spec.step("a").inputs["x"].artifact.sha256 == SHA
    assert isinstance(spec.step("b").inputs["in_0"], StepOutputInput)


def test_params_must_be_finite_json():
    assert "NaN" in problems(job(step("a", x=float("nan"))))
    assert "params take" in problems(job(step("a", blob="x" * 70_000)))


def test_spec_errors_are_invalid_argument_and_value_error():
    with pytest.raises(JobSpecError) as info:
        parse_job_spec(job(step("a", "a")))
    assert isinstance(info.value, InvalidArgument) and isinstance(info.value, ValueError)
    assert info.value.http_status == 400
    # Validating the model directly refuses the same job (no invalid JobSpec can exist).
    with pytest.raises(ValueError, match="a cycle"):
        JobSpec.model_validate(job(step("a", "a")))


def test_topological_order_puts_dependencies_first_and_keeps_independent_steps_in_order():
    # A diamond listed backwards, plus an independent step in the middle.
    spec = parse_job_spec(job(step("join", "left", "right"), step("right", "root"), step("solo"),
                              step("left", "root"), step("root")))
    order = [s.id for s in spec.topological_order()]
    assert order.index("root") < order.index("left") < order.index("join")
    assert order.index("root") < order.index("right") < order.index("join")
    assert order == ["solo", "root", "right", "left", "join"]
    assert spec.dependencies()["join"] == ["left", "right"]


def test_graph_functions_on_a_long_chain():
    # Deeper than Python's recursion limit: the algorithms are iterative.
    nodes = [f"n{i}" for i in range(3000)]
    edges = list(zip(nodes, nodes[1:]))
    assert dag.find_cycle(nodes, edges) is None
    assert dag.topological_order(list(reversed(nodes)), edges) == nodes
    assert dag.find_cycle(nodes, edges + [(nodes[-1], nodes[0])]) == nodes + [nodes[0]]
    with pytest.raises(ValueError, match="steps form a cycle"):
        dag.topological_order(nodes, edges + [(nodes[-1], nodes[0])])
    assert dag.downstream_of(nodes, edges, "n2997") == {"n2998", "n2999"}


def test_spec_digest_ignores_key_order_but_not_content():
    a = parse_job_spec(job(step("a", x=1, y=2)))
    b = parse_job_spec(job({"method": "FitPCA", "params": {"y": 2, "x": 1}, "inputs": {}, "id": "a",
                            "service": "reduction"}))
    c = parse_job_spec(job(step("a", x=1, y=3)))
    assert a.digest() == b.digest() != c.digest()
