// Renders the OpenAPI document of the gateway as a page: no external viewer (nothing outside
// loopback can be reached here), every value inserted as text.
"use strict";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function refName(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.anyOf) return schema.anyOf.map(refName).join(" | ");
  if (schema.type === "array") return `${refName(schema.items)}[]`;
  return schema.type || "object";
}

// Markdown and docstrings are shown as paragraphs (consecutive lines joined) and bullet lists of
// plain text (backticks and asterisks kept).
function prose(text) {
  const out = [];
  let list = null;
  let paragraph = null;
  for (const line of (text || "").split("\n")) {
    const bullet = /^\s*[*-]\s+(.*)$/.exec(line);
    if (bullet) {
      paragraph = null;
      if (!list) { list = el("ul"); out.push(list); }
      list.append(el("li", { text: bullet[1] }));
    } else if (line.trim() && list && /^\s+/.test(line)) {
      list.lastChild.textContent += ` ${line.trim()}`;
    } else if (line.trim()) {
      list = null;
      if (paragraph) paragraph.textContent += ` ${line.trim()}`;
      else { paragraph = el("p", { text: line.trim() }); out.push(paragraph); }
    } else {
      list = null;
      paragraph = null;
    }
  }
  return out;
}

async function main() {
  const doc = await (await fetch("/v1/openapi.json")).json();
  document.getElementById("title").textContent = `${doc.info.title} ${doc.info.version}`;
  document.getElementById("description").append(...prose(doc.info.description));
  const operations = document.getElementById("operations");
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [verb, op] of Object.entries(item)) {
      const box = el("div", { class: "operation", id: op.operationId || `${verb}-${path}` },
        el("h3", {}, el("span", { class: `verb ${verb}`, text: verb.toUpperCase() }), path),
        ...prose(op.summary), ...prose(op.description));
      const params = op.parameters || [];
      if (params.length) {
        const table = el("table", {}, el("tr", {}, el("th", { text: "parameter" }), el("th", { text: "in" }),
                                          el("th", { text: "type" }), el("th", { text: "description" })));
        for (const p of params) {
          table.append(el("tr", {}, el("td", {}, el("code", { text: p.name + (p.required ? " *" : "") })),
                          el("td", { text: p.in }), el("td", { text: refName(p.schema) }),
                          el("td", { text: p.description || (p.schema && p.schema.description) || "" })));
        }
        box.append(table);
      }
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      if (body) box.append(el("p", { text: `body: ${refName(body.schema)}` }));
      const answers = Object.entries(op.responses || {}).map(([code, r]) => {
        const json = r.content && r.content["application/json"];
        return `${code} ${r.description || ""}${json ? ` (${refName(json.schema)})` : ""}`;
      });
      box.append(el("ul", {}, ...answers.map((a) => el("li", { text: a }))));
      operations.append(box);
    }
  }
  const schemas = document.getElementById("schemas");
  for (const [name, schema] of Object.entries((doc.components || {}).schemas || {})) {
    schemas.append(el("details", { id: `schema-${name}` }, el("summary", { text: name }),
                      el("pre", { text: JSON.stringify(schema, null, 2) })));
  }
}

main().catch((err) => {
  document.getElementById("operations").append(el("p", { class: "error", text: `could not load the API: ${err}` }));
});
