// Realistic AdmissionReviews of a Deployment, as the apiserver sends them to the mutating webhook:
// small, typical (a few KiB: several containers with env, probes, resources, labels, annotations,
// managedFields) and large (~300 KiB: many containers, large managedFields). CREATE carries the
// object; UPDATE also carries oldObject with one image different.

export type ReviewSize = "small" | "typical" | "large";
export type ReviewOperation = "CREATE" | "UPDATE";

interface Shape {
  containers: number;
  envPerContainer: number;
  labels: number;
  annotations: number;
  /** Extra field-manager entries in managedFields (each a fieldsV1 tree covering the template). */
  managers: number;
}

const SHAPES: Record<ReviewSize, Shape> = {
  small: { containers: 1, envPerContainer: 0, labels: 1, annotations: 0, managers: 0 },
  typical: { containers: 3, envPerContainer: 3, labels: 4, annotations: 2, managers: 1 },
  large: { containers: 30, envPerContainer: 20, labels: 20, annotations: 20, managers: 4 },
};

function container(i: number, shape: Shape, tag: string): Record<string, unknown> {
  if (shape.envPerContainer === 0) return { name: `app-${i}`, image: `registry.example.com/team/app-${i}:${tag}` };
  return {
    name: `app-${i}`,
    image: `registry.example.com/team/app-${i}:${tag}`,
    imagePullPolicy: "IfNotPresent",
    args: ["--listen=:8080", `--instance=${i}`, "--log-format=json"],
    ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }, { name: "metrics", containerPort: 9090, protocol: "TCP" }],
    env: Array.from({ length: shape.envPerContainer }, (_, e) => ({ name: `SETTING_${e}`, value: `value-${i}-${e}-${"x".repeat(24)}` }))
      .concat([{ name: "POD_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } } as never]),
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "512Mi" } },
    livenessProbe: { httpGet: { path: "/healthz", port: 8080, scheme: "HTTP" }, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 },
    readinessProbe: { httpGet: { path: "/readyz", port: 8080, scheme: "HTTP" }, periodSeconds: 5, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 },
    securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
    volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
  };
}

/** managedFields' fieldsV1 for a set of containers: the same tree shape the apiserver writes. */
function fieldsV1(containers: Array<Record<string, unknown>>): Record<string, unknown> {
  const containerFields = (c: Record<string, unknown>): Record<string, unknown> => ({
    ".": {}, "f:args": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
    "f:env": Object.fromEntries(((c.env as Array<{ name: string }> | undefined) ?? []).map((e) => [`k:{"name":"${e.name}"}`, { ".": {}, "f:name": {}, "f:value": {} }])),
    "f:ports": { 'k:{"containerPort":8080,"protocol":"TCP"}': { ".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {} } },
    "f:resources": { "f:limits": { "f:cpu": {}, "f:memory": {} }, "f:requests": { "f:cpu": {}, "f:memory": {} } },
    "f:livenessProbe": { "f:httpGet": { "f:path": {}, "f:port": {} }, "f:periodSeconds": {} },
    "f:readinessProbe": { "f:httpGet": { "f:path": {}, "f:port": {} }, "f:periodSeconds": {} },
  });
  return {
    "f:metadata": { "f:labels": { ".": {}, "f:app": {} }, "f:annotations": { ".": {} } },
    "f:spec": {
      "f:replicas": {}, "f:selector": {},
      "f:template": { "f:spec": { "f:containers": Object.fromEntries(containers.map((c) => [`k:{"name":"${String(c.name)}"}`, containerFields(c)])) } },
    },
  };
}

function deployment(size: ReviewSize, tags: (i: number) => string): Record<string, unknown> {
  const shape = SHAPES[size];
  const containers = Array.from({ length: shape.containers }, (_, i) => container(i, shape, tags(i)));
  const labels = { app: "shop", ...Object.fromEntries(Array.from({ length: shape.labels - 1 }, (_, i) => [`example.com/label-${i}`, `value-${i}`])) };
  const annotations: Record<string, string> = {
    "kube-prepull.io/hold": "true",
    ...Object.fromEntries(Array.from({ length: shape.annotations }, (_, i) => [`example.com/annotation-${i}`, `some annotation value ${i} `.repeat(3)])),
  };
  const managers = ["kubectl-client-side-apply", "argocd-controller", "helm", "kube-controller-manager", "kustomize-controller", "flux", "manual-edit"];
  const managedFields = shape.managers === 0 ? [] : [
    { manager: "kube-controller-manager", operation: "Update", apiVersion: "apps/v1", time: "2026-01-01T00:00:00Z", fieldsType: "FieldsV1", subresource: "status", fieldsV1: { "f:status": { "f:replicas": {}, "f:readyReplicas": {} } } },
    ...managers.slice(0, shape.managers).map((manager) => ({ manager, operation: "Update", apiVersion: "apps/v1", time: "2026-01-01T00:00:00Z", fieldsType: "FieldsV1", fieldsV1: fieldsV1(containers) })),
  ];
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "shop",
      namespace: "shop",
      uid: "4f7c2d4e-6f2a-4f8e-9d57-0c7d1c2b9a11",
      resourceVersion: "123456",
      generation: 7,
      creationTimestamp: "2026-01-01T00:00:00Z",
      labels,
      annotations,
      managedFields,
    },
    spec: {
      replicas: 3,
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      selector: { matchLabels: { app: "shop" } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } },
      template: {
        metadata: { labels },
        spec: {
          containers,
          volumes: [{ name: "tmp", emptyDir: {} }],
          restartPolicy: "Always",
          terminationGracePeriodSeconds: 30,
          dnsPolicy: "ClusterFirst",
          schedulerName: "default-scheduler",
          securityContext: {},
          nodeSelector: { "kubernetes.io/os": "linux" },
        },
      },
    },
  };
}

/** An AdmissionReview for the mutating webhook, as a JSON body. */
export function admissionReviewBody(size: ReviewSize, operation: ReviewOperation): string {
  const object = deployment(size, (i) => (i === 0 && operation === "UPDATE" ? "v2" : "v1"));
  const request: Record<string, unknown> = {
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
    kind: { group: "apps", version: "v1", kind: "Deployment" },
    resource: { group: "apps", version: "v1", resource: "deployments" },
    requestKind: { group: "apps", version: "v1", kind: "Deployment" },
    requestResource: { group: "apps", version: "v1", resource: "deployments" },
    name: "shop",
    namespace: "shop",
    operation,
    userInfo: { username: "system:serviceaccount:argocd:argocd-application-controller", uid: "1", groups: ["system:serviceaccounts", "system:authenticated"] },
    object,
    options: { apiVersion: "meta.k8s.io/v1", kind: operation === "CREATE" ? "CreateOptions" : "UpdateOptions", fieldManager: "argocd-controller" },
    dryRun: false,
  };
  if (operation === "UPDATE") request.oldObject = deployment(size, () => "v1");
  return JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request });
}
