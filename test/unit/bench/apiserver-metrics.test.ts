// Which resource the apiserver's watch-event bytes during a prepull were (the scale section).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { largestWatchEvents, openWatches, watchEventBytes } from "../../../bench/support/apiserver-metrics.js";
import { sumBy } from "../../../bench/support/prometheus-text.js";

const METRICS = [
  "# TYPE apiserver_watch_events_sizes histogram",
  'apiserver_watch_events_sizes_bucket{group="",resource="nodes",version="v1",le="1024"} 3',
  'apiserver_watch_events_sizes_sum{group="",resource="nodes",version="v1"} 141904',
  'apiserver_watch_events_sizes_sum{group="",resource="pods",version="v1"} 5000',
  'apiserver_watch_events_sizes_sum{group="apps",resource="daemonsets",version="v1"} 700',
  'apiserver_longrunning_requests{component="apiserver",group="",resource="nodes",scope="cluster",subresource="",verb="WATCH",version="v1"} 5',
  'apiserver_longrunning_requests{component="apiserver",group="",resource="nodes",scope="resource",subresource="",verb="WATCH",version="v1"} 1',
  'apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1"} 2',
  'apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 4',
].join("\n");

describe("apiserver metrics", () => {
  it("sums a metric's samples by one label, only those with the given labels, not its buckets", () => {
    assert.deepEqual(sumBy(METRICS, "apiserver_watch_events_sizes_sum", "resource"), new Map([["nodes", 141904], ["pods", 5000], ["daemonsets", 700]]));
    assert.deepEqual(sumBy(METRICS, "apiserver_longrunning_requests", "resource", { verb: "WATCH", scope: "cluster" }), new Map([["nodes", 5], ["pods", 4]]));
  });

  it("names the resources whose watch bytes grew most, with their open watches", () => {
    const before = new Map([["nodes", 100_000], ["pods", 1000], ["daemonsets", 700]]);
    const after = watchEventBytes(METRICS);
    const watchers = openWatches(METRICS);
    assert.deepEqual(largestWatchEvents(before, after, watchers), [
      { resource: "nodes", bytes: 41904, watchers: 5 },
      { resource: "pods", bytes: 4000, watchers: 4 },
    ], "daemonsets did not grow: left out");
    assert.equal(largestWatchEvents(before, after, watchers, 1).length, 1);
  });
});
