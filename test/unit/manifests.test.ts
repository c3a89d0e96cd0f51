// The manifests say what the code does: the webhook configurations in manifests/base are the ones
// src/admission/webhook-configuration.ts renders for the in-cluster Service (caBundle aside).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { namespaceSelector, renderWebhookConfigurations, WEBHOOK_TIMEOUT_SECONDS } from "../../src/admission/webhook-configuration.js";
import { packageRoot } from "../../src/local-cluster/binaries.js";

const read = (file: string): unknown[] =>
  parseAllDocuments(readFileSync(path.join(packageRoot(), "manifests", file), "utf8")).map((d) => d.toJS() as unknown);

describe("manifests", () => {
  it("ship the webhook configurations the code renders", () => {
    const { mutating, validating } = renderWebhookConfigurations({
      name: "kube-prepull",
      mode: "opt-in",
      ownNamespace: "kube-prepull",
      target: { service: { namespace: "kube-prepull", name: "kube-prepull", port: 443 }, caBundlePem: "" },
      timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
    });
    for (const config of [mutating, validating]) for (const webhook of config.webhooks ?? []) delete webhook.clientConfig.caBundle;
    assert.deepEqual(read("base/webhooks.yaml"), JSON.parse(JSON.stringify([mutating, validating])));
  });

  it("the cluster-wide overlay uses the code's cluster-wide namespace selector", () => {
    const [patch] = read("overlays/cluster-wide/cluster-wide-selector.yaml") as [Array<{ path: string; value: unknown }>];
    const { mutating, validating } = renderWebhookConfigurations({ name: "x", mode: "opt-in", ownNamespace: "kube-prepull", target: { url: "https://x", caBundlePem: "" }, timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS });
    // One operation per webhook (one per workload kind), in both configurations.
    assert.equal(mutating.webhooks!.length, validating.webhooks!.length);
    assert.deepEqual(patch.map((op) => op.path), mutating.webhooks!.map((_w, i) => `/webhooks/${i}/namespaceSelector`));
    for (const op of patch) assert.deepEqual(op.value, namespaceSelector("cluster-wide", "kube-prepull"));
  });
});
