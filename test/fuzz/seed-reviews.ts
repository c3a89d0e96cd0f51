// The real AdmissionReviews the fuzzer starts from: every workload kind kube-prepull serves, every
// operation the apiserver sends (CREATE, UPDATE, DELETE, CONNECT), shaped as the apiserver sends
// them (request.kind/resource, userInfo, options, object and oldObject), with kube-prepull's own
// annotations in the states they take (requested, held, with a status). The typical and large
// Deployments are the benchmark's (bench/support/admission-reviews.ts).
import { admissionReviewBody } from "../../bench/support/admission-reviews.js";
import type { Random } from "./random.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const SEED_KINDS = ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"] as const;
export type SeedKind = (typeof SEED_KINDS)[number];
export const SEED_OPERATIONS = ["CREATE", "UPDATE", "DELETE", "CONNECT"] as const;
export type SeedOperation = (typeof SEED_OPERATIONS)[number];

const GROUPS: Record<SeedKind, { group: string; resource: string }> = {
  Deployment: { group: "apps", resource: "deployments" },
  StatefulSet: { group: "apps", resource: "statefulsets" },
  DaemonSet: { group: "apps", resource: "daemonsets" },
  Job: { group: "batch", resource: "jobs" },
  CronJob: { group: "batch", resource: "cronjobs" },
};

export const resourceOf = (kind: SeedKind): string => GROUPS[kind].resource;

function podTemplate(random: Random, tag: string): JsonObject {
  const containers: Json[] = [{ name: "app", image: `registry.example.com/shop/app:${tag}`, imagePullPolicy: "IfNotPresent", ports: [{ containerPort: 8080 }] }];
  if (random.chance(0.5)) containers.push({ name: "sidecar", image: random.pick(["envoyproxy/envoy:v1.31", "nginx", "docker.io/library/busybox:1.36"]) });
  const spec: JsonObject = { containers, restartPolicy: "Always", nodeSelector: { "kubernetes.io/os": "linux" } };
  if (random.chance(0.3)) spec.initContainers = [{ name: "init", image: `ghcr.io/shop/migrate:${tag}` }];
  if (random.chance(0.3)) spec.tolerations = [{ key: "dedicated", operator: "Equal", value: "shop", effect: "NoSchedule" }];
  return { metadata: { labels: { app: "shop" } }, spec };
}

/** kube-prepull's annotations in one of the states a workload's annotations take. */
function annotations(random: Random, kind: SeedKind): JsonObject {
  const out: JsonObject = { "example.com/owner": "team-shop" };
  if (random.chance(0.6) && kind !== "CronJob") out["kube-prepull.io/hold"] = "true";
  if (random.chance(0.2)) out["kube-prepull.io/hold-timeout"] = random.pick(["90s", "5m", "1h30m"]);
  if (random.chance(0.2)) out["kube-prepull.io/max-parallel"] = random.pick(["3", "25%", "100%"]);
  if (random.chance(0.1)) out["kube-prepull.io/nodes"] = random.pick(["eligible", "all"]);
  if (random.chance(0.05)) out["kube-prepull.io/prepull"] = "false";
  if (random.chance(0.3)) {
    out["kube-prepull.io/request"] = JSON.stringify({ id: "0123456789ab", images: ["registry.example.com/shop/app:v1"], requestedAt: "2026-11-22T09:00:00.000Z", hold: true });
    if (random.chance(0.5)) out["kube-prepull.io/held-by"] = random.pick(["0123456789ab", '0123456789ab {"partition":0,"held":3}', '0123456789ab {"updateStrategy":{"type":"RollingUpdate"}}']);
    if (random.chance(0.5)) out["kube-prepull.io/status"] = JSON.stringify({ phase: "Pulling", images: ["registry.example.com/shop/app:v1"], nodes: { desired: 4, pulled: 1, failed: 0 }, startedAt: "2026-11-22T09:00:01.000Z", request: "0123456789ab", daemonSet: "prepull-deploy-shop-0123456789" });
  }
  return out;
}

function workloadSpec(kind: SeedKind, random: Random, tag: string): JsonObject {
  const template = podTemplate(random, tag);
  const selector = { matchLabels: { app: "shop" } };
  switch (kind) {
    case "Deployment":
      return { replicas: random.pick([1, 3, 0]), selector, strategy: { type: "RollingUpdate" }, template, ...(random.chance(0.2) ? { paused: true } : {}) };
    case "StatefulSet":
      return { replicas: 3, serviceName: "shop", selector, template, updateStrategy: random.pick<Json>([{ type: "RollingUpdate", rollingUpdate: { partition: 0 } }, { type: "OnDelete" }, { type: "RollingUpdate" }]) };
    case "DaemonSet":
      return { selector, template, updateStrategy: random.pick<Json>([{ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } }, { type: "OnDelete" }]) };
    case "Job":
      return { parallelism: random.pick([1, 4, 0]), completions: 4, backoffLimit: 2, template: { ...template, spec: { ...(template.spec as JsonObject), restartPolicy: "Never" } }, ...(random.chance(0.2) ? { suspend: true } : {}) };
    case "CronJob":
      return { schedule: "*/5 * * * *", concurrencyPolicy: "Forbid", jobTemplate: { spec: { template: { ...template, spec: { ...(template.spec as JsonObject), restartPolicy: "OnFailure" } } } } };
  }
}

function workloadObject(kind: SeedKind, random: Random, tag: string, objectAnnotations: JsonObject): JsonObject {
  return {
    apiVersion: `${GROUPS[kind].group}/v1`,
    kind,
    metadata: {
      name: "shop",
      namespace: "shop",
      uid: "4f7c2d4e-6f2a-4f8e-9d57-0c7d1c2b9a11",
      resourceVersion: "123456",
      generation: 2,
      labels: { app: "shop" },
      annotations: objectAnnotations,
    },
    spec: workloadSpec(kind, random, tag),
  };
}

const uid = (random: Random): string =>
  [8, 4, 4, 4, 12].map((n) => Array.from({ length: n }, () => "0123456789abcdef"[random.int(16)]).join("")).join("-");

/** A review of `kind` and `operation` as the apiserver sends it, as a JSON tree. */
export function seedReview(kind: SeedKind, operation: SeedOperation, random: Random): JsonObject {
  // The benchmark's typical and large Deployments are realistic shapes (managedFields, env, probes).
  if (kind === "Deployment" && (operation === "CREATE" || operation === "UPDATE") && random.chance(0.15)) {
    const review = JSON.parse(admissionReviewBody(random.chance(0.8) ? "typical" : "large", operation)) as JsonObject;
    (review.request as JsonObject).uid = uid(random);
    return review;
  }
  const objectAnnotations = annotations(random, kind);
  const after = workloadObject(kind, random, "v2", objectAnnotations);
  const before = workloadObject(kind, random, random.chance(0.8) ? "v1" : "v2", random.chance(0.7) ? objectAnnotations : annotations(random, kind));
  const { group, resource } = GROUPS[kind];
  const request: JsonObject = {
    uid: uid(random),
    kind: { group, version: "v1", kind },
    resource: { group, version: "v1", resource },
    requestKind: { group, version: "v1", kind },
    requestResource: { group, version: "v1", resource },
    name: "shop",
    namespace: "shop",
    operation,
    userInfo: { username: "system:serviceaccount:argocd:argocd-application-controller", groups: ["system:authenticated"] },
    object: operation === "DELETE" ? null : after,
    oldObject: operation === "UPDATE" || operation === "DELETE" ? before : null,
    dryRun: random.chance(0.1),
    options: { apiVersion: "meta.k8s.io/v1", kind: `${operation[0]}${operation.slice(1).toLowerCase()}Options` },
  };
  if (operation === "CONNECT") Object.assign(request, { subResource: "exec", object: null, oldObject: null });
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request };
}
