import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_SETTINGS, parseDuration, parseMaxParallel, readSettings } from "../../../src/prepull/annotations.js";

describe("annotation values", () => {
  it("parses durations of hours, minutes and seconds", () => {
    const cases: Array<[string, number | undefined]> = [
      ["90s", 90], ["5m", 300], ["1h30m", 5400], ["6h", 21600], ["1h0m5s", 3605],
      ["", undefined], ["5", undefined], ["1.5h", undefined], ["-5m", undefined], ["5m1h", undefined], ["10ms", undefined],
    ];
    for (const [text, seconds] of cases) assert.equal(parseDuration(text), seconds, text);
  });

  it("parses max-parallel as a count or a percentage", () => {
    assert.deepEqual(parseMaxParallel("10"), { kind: "count", value: 10 });
    assert.deepEqual(parseMaxParallel("25%"), { kind: "percent", value: 25 });
    for (const bad of ["0", "0%", "101%", "-1", "1.5", "ten", "", "05"]) assert.equal(parseMaxParallel(bad), undefined, bad);
  });

  it("reads the defaults from a Deployment without annotations", () => {
    assert.deepEqual(readSettings(undefined), { settings: DEFAULT_SETTINGS, problems: [] });
  });

  it("reads every setting", () => {
    const { settings, problems } = readSettings({
      "kube-prepull.io/prepull": "true",
      "kube-prepull.io/hold": "true",
      "kube-prepull.io/hold-timeout": "1h30m",
      "kube-prepull.io/nodes": "all",
      "kube-prepull.io/max-parallel": "25%",
      "kube-prepull.io/status": "{}",
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(settings, {
      prepull: true, hold: true, holdTimeoutSeconds: 5400, nodes: "all", maxParallel: { kind: "percent", value: 25 },
    });
  });

  it("names the key and the allowed values of each malformed or unknown annotation", () => {
    const { settings, problems } = readSettings({
      "kube-prepull.io/hold-timeout": "10s",
      "kube-prepull.io/nodes": "some",
      "kube-prepull.io/holdd": "true",
      "example.com/other": "x",
    });
    assert.equal(settings.holdTimeoutSeconds, 600, "default kept");
    assert.equal(settings.nodes, "eligible");
    assert.deepEqual(problems.map((p) => p.key), ["kube-prepull.io/hold-timeout", "kube-prepull.io/nodes", "kube-prepull.io/holdd"]);
    assert.match(problems[0]!.message, /from 30s to 6h/);
    assert.match(problems[1]!.message, /"eligible" or "all"/);
    assert.match(problems[2]!.message, /unknown annotation; kube-prepull.io annotations are kube-prepull.io\/prepull, /);
  });
});
