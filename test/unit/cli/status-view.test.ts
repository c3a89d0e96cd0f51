import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { UsageError } from "../../../src/cli/exit-codes.js";
import { changePrinter } from "../../../src/cli/status-command.js";
import {
  columnWidths, failedNodesCell, formatRow, humanDuration, itemOf, listDocument, parseWorkloadArgument, renderDocument, renderTable, tableRow,
  type PrepullItem,
} from "../../../src/cli/status-view.js";
import { toYaml } from "../../../src/cli/yaml.js";
import { failureCounts, type PrepullStatus } from "../../../src/prepull/progress.js";
import { WORKLOADS } from "../../../src/workloads/kinds.js";
import { deploymentWorkload } from "../../../src/workloads/deployment.js";
import { statefulSetWorkload } from "../../../src/workloads/statefulset.js";

const NOW = new Date("2026-12-03T12:00:00Z");
const ago = (seconds: number): string => new Date(NOW.getTime() - seconds * 1000).toISOString();

const status = (overrides: Partial<PrepullStatus> = {}): PrepullStatus => ({
  phase: "Pulling",
  images: ["registry.example/web:2"],
  nodes: { desired: 4, pulled: 1, failed: 0, skipped: 0 },
  startedAt: ago(75),
  request: "req-1",
  daemonSet: "prepull-web-abc",
  ...overrides,
});

const item = (overrides: Partial<PrepullItem> = {}): PrepullItem => ({ namespace: "shop", kind: "Deployment", name: "web", held: true, status: status(), ...overrides });

describe("status: the WORKLOAD argument", () => {
  it("takes NAME (every kind), TYPE/NAME with kind, plural or short name, and TYPE.group/NAME", () => {
    assert.deepEqual(parseWorkloadArgument(undefined), { workloads: WORKLOADS });
    assert.deepEqual(parseWorkloadArgument("web"), { workloads: WORKLOADS, name: "web" });
    for (const type of ["deployment", "Deployment", "deployments", "deploy", "deployments.apps", "deployment.apps"]) {
      assert.deepEqual(parseWorkloadArgument(`${type}/web`), { workloads: [deploymentWorkload], name: "web" }, type);
    }
    assert.deepEqual(parseWorkloadArgument("sts/db").workloads, [statefulSetWorkload]);
    assert.equal(parseWorkloadArgument("cj/nightly").workloads[0]?.kind, "CronJob");
    assert.equal(parseWorkloadArgument("ds/agent").workloads[0]?.kind, "DaemonSet");
    assert.equal(parseWorkloadArgument("jobs.batch/once").workloads[0]?.kind, "Job");
  });

  it("rejects unknown kinds and names that cannot be object names, saying what it takes", () => {
    assert.throws(() => parseWorkloadArgument("pod/web"), (e: Error) => e instanceof UsageError && /"pod" is not a workload kind.*deployment \(deploy\)/.test(e.message));
    assert.throws(() => parseWorkloadArgument("deployments.batch/web"), UsageError);
    for (const bad of ["Web", "deploy/", "a/b/c", "-web", ""]) assert.throws(() => parseWorkloadArgument(bad), UsageError, bad);
  });
});

describe("status: a workload's prepull", () => {
  it("is read from the status annotation, held while held-by is present", () => {
    const object = { metadata: { name: "web", namespace: "shop", annotations: { "kube-prepull.io/status": JSON.stringify(status()), "kube-prepull.io/held-by": "req-1" } } };
    assert.deepEqual(itemOf(deploymentWorkload, object), item());
    const released = { metadata: { ...object.metadata, annotations: { "kube-prepull.io/status": JSON.stringify(status()) } } };
    assert.equal(itemOf(deploymentWorkload, released)?.held, false);
    assert.equal(itemOf(deploymentWorkload, { metadata: { name: "x", namespace: "shop", annotations: { "kube-prepull.io/status": "not json" } } }), undefined);
    assert.equal(itemOf(deploymentWorkload, { metadata: { name: "x", namespace: "shop" } }), undefined);
  });
});

describe("status: the table", () => {
  it("ages like kubectl", () => {
    assert.deepEqual([0, 45, 119, 120, 200, 600, 3600 * 3, 3600 * 3 + 120, 3600 * 30, 86400 * 3 + 7200, 86400 * 30, 86400 * 800, 86400 * 365 * 9, -5].map(humanDuration),
      ["0s", "45s", "119s", "2m", "3m20s", "10m", "3h", "3h2m", "30h", "3d2h", "30d", "2y70d", "9y", "<invalid>"]);
  });

  it("has kubectl's columns, 3 spaces apart, NAMESPACE only across namespaces", () => {
    const failed = item({ name: "api", held: false, status: status({ phase: "Failed", nodes: { desired: 4, pulled: 2, failed: 2 }, message: "ErrImagePull on 2 nodes (a, b): not found", finishedAt: ago(10) }) });
    const lines = renderTable([item(), failed], { allNamespaces: false, wide: false }, NOW);
    assert.deepEqual(lines, [
      "WORKLOAD         PHASE     PULLED   FAILED   HELD   SUPERSEDED   AGE   MESSAGE",
      "deployment/api   Failed    2/4      2        no     0            75s   ErrImagePull on 2 nodes (a, b): not found",
      "deployment/web   Pulling   1/4      0        yes    0            75s",
    ]);
    const all = renderTable([item()], { allNamespaces: true, wide: false }, NOW);
    assert.match(all[0]!, /^NAMESPACE {3}WORKLOAD /);
    assert.match(all[1]!, /^shop {8}deployment\/web /);
  });

  it("shows superseded prepulls like kubectl's restarts", () => {
    const row = tableRow(item({ status: status({ superseded: { count: 2, request: "req-0", images: ["x:1"], at: ago(300) } }) }), { allNamespaces: false, wide: false }, NOW);
    assert.equal(row[5], "2 (5m ago)");
  });

  it("in wide, lists images, the DaemonSet and failed nodes by reason, with how many more the annotation counts", () => {
    const failures = failureCounts([
      ...Array.from({ length: 30 }, (_, i) => ({ node: `n${String(i).padStart(2, "0")}`, reason: "ImagePullBackOff", message: "Back-off" })),
      { node: "x", reason: "InvalidImageName", message: "bad" },
    ]);
    const wide = tableRow(item({ status: status({ images: ["a:1", "b:2"], failures }) }), { allNamespaces: false, wide: true }, NOW);
    assert.equal(wide[7], "a:1,b:2");
    assert.equal(wide[8], "prepull-web-abc");
    assert.match(wide[9]!, /^ImagePullBackOff: n00,n01,.*,n18,\+11 more; InvalidImageName: x$/);
    assert.equal(failedNodesCell(undefined), "<none>");
  });

  it("keeps each row on one line", () => {
    assert.equal(tableRow(item({ status: status({ message: "one\n  two" }) }), { allNamespaces: false, wide: false }, NOW).at(-1), "one two");
  });

  it("aligns watch rows with the widths seen so far", () => {
    const widths = columnWidths([["A", "BB"], ["CCC", "D"]]);
    assert.deepEqual(widths, [3, 2]);
    assert.equal(formatRow(["x", "y"], widths), "x     y");
    assert.deepEqual(columnWidths([["LONGER", "z"]], widths), [6, 2]);
  });
});

describe("status: JSON and YAML", () => {
  const failures = [{ reason: "ErrImagePull", count: 3, message: "rpc error: code = NotFound desc = \"x\": not found", nodes: ["a", "b", "c"] }];
  const items = [item({ name: "z" }), item({ status: status({ phase: "Failed", failures, superseded: { count: 1, request: "r0", images: ["yes", "1.0"], at: ago(9) } }) })];

  it("lists every item with every status field, sorted", () => {
    const doc = JSON.parse(renderDocument(listDocument(items), "json")) as { items: PrepullItem[] };
    assert.deepEqual(doc.items.map((i) => i.name), ["web", "z"]);
    assert.deepEqual(doc.items[0]!.status.failures, failures);
  });

  it("writes YAML that reads back as the same data", () => {
    const text = renderDocument(listDocument(items), "yaml");
    assert.deepEqual(parse(text), JSON.parse(JSON.stringify(listDocument(items))));
    assert.match(text, /^items:\n- namespace: shop\n {2}kind: Deployment\n/);
    for (const value of [{}, [], { a: [] }, [[1, [2]], { b: null }], { "key with: colon": "true", n: "007", e: "", t: "#x", s: " a" }, [{ a: { b: [{ c: 1 }] } }]]) {
      assert.deepEqual(parse(toYaml(value)), value, JSON.stringify(value));
    }
  });
});

describe("status --watch: what a change prints", () => {
  const capture = () => {
    const out: string[] = [];
    return { out, ctx: { env: {}, out: (line: string) => void out.push(line), err: () => undefined } };
  };
  const options = { allNamespaces: false, wide: false };

  it("prints a row only when the prepull changed, the header with the first row when the list was empty", () => {
    const { out, ctx } = capture();
    const show = changePrinter(ctx, "table", options, []);
    show(item());
    show(item());
    show(item({ status: status({ phase: "Succeeded", nodes: { desired: 4, pulled: 4, failed: 0 } }) }));
    show(item({ held: false, status: status({ phase: "Succeeded", nodes: { desired: 4, pulled: 4, failed: 0 } }) }));
    assert.equal(out.length, 4, out.join("\n"));
    assert.match(out[0]!, /^WORKLOAD\s+PHASE/);
    assert.match(out[1]!, /^deployment\/web\s+Pulling\s+1\/4\s+0\s+yes\s/);
    assert.match(out[2]!, /^deployment\/web\s+Succeeded\s+4\/4\s+0\s+yes\s/);
    assert.match(out[3]!, /^deployment\/web\s+Succeeded\s+4\/4\s+0\s+no\s/);
  });

  it("does not repeat what the list showed, and prints changed items as JSON or YAML documents", () => {
    const json = capture();
    const showJson = changePrinter(json.ctx, "json", options, [item()]);
    showJson(item());
    showJson(item({ held: false }));
    assert.equal(json.out.length, 1);
    assert.equal((JSON.parse(json.out[0]!) as PrepullItem).held, false);
    const yaml = capture();
    changePrinter(yaml.ctx, "yaml", options, [])(item());
    assert.match(yaml.out[0]!, /^---\nnamespace: shop\n/);
    assert.equal((parse(yaml.out[0]!.slice(4)) as PrepullItem).status.phase, "Pulling");
  });
});
