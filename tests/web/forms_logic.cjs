// Run by tests/web/test_forms_logic.py on the compiled frontend/src/forms/schema.ts and schemaEdit.ts.
const assert = require("node:assert/strict");
const s = require("./forms/schema.js");
const e = require("./forms/schemaEdit.js");

// pydantic's Optional[X]: anyOf [X, null] and type [X, null] become X, at any depth
const n = s.normalise({type: "object", properties: {
  k: {anyOf: [{type: "string", maxLength: 3}, {type: "null"}], default: null, title: "K"},
  t: {type: ["integer", "null"]},
  grid: {type: "object", properties: {c: {anyOf: [{type: "number"}, {type: "null"}]}}},
  xs: {type: "array", items: {anyOf: [{type: "string"}, {type: "null"}]}},
}});
assert.deepEqual(n.properties.k, {type: "string", maxLength: 3, title: "K", nullable: true});
assert.equal(n.properties.t.type, "integer");
assert.equal(n.properties.grid.properties.c.type, "number");
assert.equal(n.properties.xs.items.type, "string");
// a real union is left alone
assert.ok(s.normalise({anyOf: [{type: "string"}, {type: "integer"}]}).anyOf);

// the gateway's `where` → a dotted field path
const {fields, rest} = s.fieldProblems([
  {what: "too big", where: "pipeline/p > parameters.n_days", fix: "give <= 30"},
  {what: "bad", where: "pipeline/p > parameters.grid[0].C", fix: ""},
  {what: "no field", where: "pipeline/p > parameters", fix: "x"},
  {what: "elsewhere", where: "pipeline/p > steps[0] (a) > uses", fix: ""},
  {what: "named parameters", where: "pipeline/p > parameters.parameters", fix: ""},
]);
assert.deepEqual(fields, {n_days: "too big. Fix: give <= 30", "grid.0.C": "bad", parameters: "named parameters"});
assert.deepEqual(rest.map((p) => p.what), ["no field", "elsewhere"]);
assert.deepEqual(s.fieldProblems([{what: "w", where: "pipeline/p > steps[1] (t) > with.C", fix: ""}], "with").fields, {C: "w"});

// a problem lands on a field the form shows, or above it: never dropped
const schema = {type: "object", properties: {tags: {type: "array", items: {type: "string"}}, grid: {type: "object", properties: {C: {type: "number"}}}}};
const placed = s.placeProblems(schema, {"tags.0": "short", "tags.3": "gone", "grid.C": "neg", nope: "unknown", "": "root"}, {tags: ["a"]});
assert.deepEqual(placed.errors, {tags: {0: {__errors: ["short"]}}, grid: {C: {__errors: ["neg"]}}});
assert.deepEqual(placed.elsewhere.map(([p]) => p).sort(), ["", "nope", "tags.3"]);

// bindings and secrets
assert.deepEqual(s.binding("${{ params.lr }}"), {namespace: "params", name: "lr"});
assert.deepEqual(s.binding(" ${{secrets.HF_TOKEN}} "), {namespace: "secrets", name: "HF_TOKEN"});
assert.equal(s.binding("x ${{ params.lr }}"), null);
assert.equal(s.binding(3), null);
assert.ok(s.isExpression("a ${{ params.b }}"));
assert.ok(s.isSecret({type: "string", writeOnly: true}) && s.isSecret({format: "secret"}) && s.isSecret({format: "password"}));
assert.ok(!s.isSecret({type: "string"}));

// the schema builder
assert.equal(e.typeOf({type: "string", enum: ["a"]}), "enum");
assert.deepEqual(e.retype({type: "integer", minimum: 1, maximum: 9, default: 3, description: "d"}, "number"), {type: "number", minimum: 1, maximum: 9, description: "d"});
assert.deepEqual(e.retype({type: "integer", minimum: 1}, "boolean"), {type: "boolean"});
assert.deepEqual(e.retype({type: "string"}, "enum"), {type: "string", enum: ["a", "b"]});
assert.deepEqual(e.parseDefault("3", {type: "integer"}), {value: 3});
assert.ok(e.parseDefault("3.5", {type: "integer"}).error);
assert.ok(e.parseDefault("c", {type: "string", enum: ["a", "b"]}).error);
assert.deepEqual(e.parseDefault("", {type: "string"}), {});
assert.ok(e.NAME_RE.test("n_days") && !e.NAME_RE.test("1x") && !e.NAME_RE.test("a-b") && !e.NAME_RE.test("${{"));

// one step's problems, for the builder's side panel (a nested pipeline's own steps are not this step's)
const step = s.stepFieldProblems([
  {what: "a", where: "pipeline/p > steps[1] (train) > with.C", fix: ""},
  {what: "b", where: "pipeline/p > steps[1] (train) > uses", fix: ""},
  {what: "c", where: "pipeline/p > steps[0] (load) > with.name", fix: ""},
  {what: "d", where: "pipeline/p > steps[2] (train2) > with.C", fix: ""},
  {what: "e", where: "pipeline/p > steps[1] (train) > pipeline/q@1.0.0 > steps[0] (x) > with.k", fix: ""},
], "train");
assert.deepEqual(step.fields, {C: "a"});
assert.deepEqual(step.rest.map((p) => p.what), ["b", "e"]);
assert.deepEqual(step.others.map((p) => p.what), ["c", "d"]);
console.log("ok");
