// The run-once prepull DaemonSet (spec §3), rendered from the persisted workload. Pure.
//
// Pod shape (the "init containers pull, a tiny main container holds" pattern): a first init
// container copies the static helper binary into an emptyDir; each new image is an init container
// that runs the copied helper, which exits 0, so nothing from the target image's userland runs; the
// main container is the helper waiting like `pause`. The pod is Ready only once every image is on
// the node. Nothing here mounts a hostPath or a runtime socket; every container passes Pod Security
// "restricted" (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted).
import type * as k8s from "@kubernetes/client-node";
import { apiVersionOf, type Workload, type WorkloadObject } from "../workloads/workload.js";
import { LABELS, MANAGED_BY, workloadLabel, type NodesMode } from "./annotations.js";
import { imageKey } from "./image-reference.js";
import { imageSetHash, type PrepullRequest } from "./request.js";
import { EVERY_TARGET_ANNOTATION, prepullAffinity, type ImageToPull, type Placement } from "./targets.js";

/**
 * How a prepull pod makes the kubelet pull (spec §3): `init-containers` (default, any cluster)
 * runs the helper from each image as an init container; `image-volumes` mounts each image as an
 * image volume (Kubernetes ≥ 1.35, or 1.33+ with the ImageVolume gate) into the helper's pause
 * container, so nothing at all runs from the target images.
 */
export type PullStrategy = "init-containers" | "image-volumes";

export interface PrepullPodConfig {
  /** Image holding the static helper at HELPER_PATH. */
  helperImage: string;
  /** Default "init-containers". */
  strategy?: PullStrategy;
  extraLabels: Record<string, string>;
  extraAnnotations: Record<string, string>;
  priorityClassName?: string;
  /** Every container's requests and limits; default PREPULL_RESOURCES. */
  resources?: k8s.V1ResourceRequirements;
}

export const HELPER_PATH = "/prepull-helper";
const HELPER_VOLUME = "prepull-helper";
const HELPER_MOUNT = "/.prepull";
// Chosen by measurement on a real node (docs/benchmarks.md, "A real node"): runc's own start-up
// runs inside the container's CPU quota, so a 10m limit made a pod with 6 present images take
// ~90 s to be Ready; from 250m on it took what an unlimited pod takes (~9 s), so the limit is
// 250m and the request, what the scheduler reserves on every node, stays 10m. A limit is kept for
// namespaces whose quota requires one. Memory: requests = limits, not less than 32Mi (runc's init
// has been OOM-killed at 20Mi, eclipse-che#22446).
export const PREPULL_RESOURCES: k8s.V1ResourceRequirements = {
  requests: { cpu: "10m", memory: "32Mi" },
  limits: { cpu: "250m", memory: "32Mi" },
};
// An unprivileged user that exists nowhere in particular: the helper needs no home, no name.
const RUN_AS = 65532;

const CONTAINER_SECURITY: k8s.V1SecurityContext = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  runAsUser: RUN_AS,
  runAsGroup: RUN_AS,
  seccompProfile: { type: "RuntimeDefault" },
};

const MAX_NAME = 63;
const STRATEGY_ANNOTATION = "kube-prepull.io/pull-strategy";
const REQUEST_ID_ANNOTATION = "kube-prepull.io/request-id";

/**
 * prepull-<name>-<hash of the image set> for a Deployment (the names of earlier releases, so an
 * upgrade finds its prepulls in flight), prepull-<short kind>-<name>-<hash of kind and images>
 * for the other kinds (spec §3a: no clash between a Deployment and a StatefulSet of one name); at
 * most 63 characters (a DNS label).
 */
export function prepullDaemonSetName(workloadName: string, images: string[], workload: Pick<Workload, "kind" | "shortName"> = { kind: "Deployment", shortName: "deploy" }): string {
  const deployment = workload.kind === "Deployment";
  const hash = deployment ? imageSetHash(images) : imageSetHash([...images, `kind:${workload.kind}`]);
  const prefix = deployment ? "prepull-" : `prepull-${workload.shortName}-`;
  const room = MAX_NAME - prefix.length - 1 - hash.length;
  const base = workloadName.slice(0, room).replace(/[-.]+$/, "");
  return `${prefix}${base}-${hash}`;
}

/** A label value (≤ 63 characters) naming a workload; long names are cut and suffixed with a hash. */
export function workloadLabelValue(name: string): string {
  if (name.length <= MAX_NAME) return name;
  return `${name.slice(0, 52).replace(/[-._]+$/, "")}-${imageSetHash([name])}`;
}

/** The workload container's pull policy for an image (spec: "each image keeps the workload container's imagePullPolicy"). */
function pullPolicyOf(spec: k8s.V1PodSpec | undefined, image: string): string | undefined {
  const key = imageKey(image);
  return [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].find((c) => c.image && imageKey(c.image) === key)
    ?.imagePullPolicy;
}

/**
 * True when a DaemonSet rendered with image volumes came back without them: an API server whose
 * ImageVolume feature gate is off drops the volumes silently, and the pods would then "succeed"
 * without pulling anything.
 */
export function imageVolumesDropped(daemonSet: k8s.V1DaemonSet): boolean {
  if (daemonSet.metadata?.annotations?.[STRATEGY_ANNOTATION] !== "image-volumes") return false;
  return !(daemonSet.spec?.template.spec?.volumes ?? []).some((v) => v.image !== undefined);
}

/** Each image with the pull policy of the workload container that names it. */
export function imagesToPull(spec: k8s.V1PodSpec | undefined, images: string[]): ImageToPull[] {
  return images.map((image) => {
    const pullPolicy = pullPolicyOf(spec, image);
    return pullPolicy ? { image, pullPolicy } : { image };
  });
}

/**
 * Where the prepull pods may run, before kube-prepull picks nodes (spec §3 `nodes`): `eligible`
 * copies the template's nodeSelector, required node affinity (pod affinity and preferences do not
 * decide where pods can run) and tolerations; `all` tolerates every taint.
 */
export function placementOf(template: k8s.V1PodSpec | undefined, nodes: NodesMode): Placement {
  if (nodes === "all") return { tolerations: [{ operator: "Exists" }] };
  const required = template?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  return {
    ...(template?.nodeSelector ? { nodeSelector: template.nodeSelector } : {}),
    ...(required ? { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: required } } } : {}),
    ...(template?.tolerations?.length ? { tolerations: template.tolerations } : {}),
  };
}

/**
 * What a prepull DaemonSet pulls and for whom, whoever asked: a workload (the controller) or
 * `kube-prepull run`. The renderer below knows nothing else about its origin.
 */
export interface PrepullSubject {
  /** The DaemonSet's name (also its pods' selector label). */
  name: string;
  namespace: string;
  /** Labels saying whose prepull it is, besides `app.kubernetes.io/managed-by`. */
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ownerReferences?: k8s.V1OwnerReference[];
  images: ImageToPull[];
  /** Where its pods may run before kube-prepull picks the nodes. */
  placement: Placement;
  serviceAccountName?: string;
  imagePullSecrets?: k8s.V1LocalObjectReference[];
}

/** The workload's prepull: named after it, owned by it, with its pod's ServiceAccount, pull secrets, pull policies and placement. */
export function renderPrepullDaemonSet(input: {
  workload: Workload;
  object: WorkloadObject;
  request: PrepullRequest;
  nodes: NodesMode;
  /** The nodes to pull on now (the first wave; never empty), or undefined for every node the placement admits (targets.ts firstNodeList). */
  nodeNames: string[] | undefined;
  config: PrepullPodConfig;
}): k8s.V1DaemonSet {
  const { workload, object, request } = input;
  const name = object.metadata!.name!;
  const template = workload.template(object)?.spec;
  const subject: PrepullSubject = {
    name: prepullDaemonSetName(name, request.images, workload),
    namespace: object.metadata!.namespace!,
    labels: { [workloadLabel(workload.kind)]: workloadLabelValue(name) },
    annotations: { [REQUEST_ID_ANNOTATION]: request.id, ...(input.nodeNames ? {} : { [EVERY_TARGET_ANNOTATION]: "true" }) },
    ownerReferences: [
      { apiVersion: apiVersionOf(workload), kind: workload.kind, name, uid: object.metadata!.uid!, controller: false, blockOwnerDeletion: false },
    ],
    images: imagesToPull(template, request.images),
    placement: placementOf(template, input.nodes),
    ...(template?.serviceAccountName ? { serviceAccountName: template.serviceAccountName } : {}),
    ...(template?.imagePullSecrets?.length ? { imagePullSecrets: template.imagePullSecrets } : {}),
  };
  return renderDaemonSet({ subject, nodeNames: input.nodeNames, config: input.config });
}

/** The containers and volumes that make the kubelet pull `pulls`, by pull strategy (spec §3). */
function pullingContainers(pulls: ImageToPull[], config: PrepullPodConfig): Pick<k8s.V1PodSpec, "initContainers" | "containers" | "volumes"> {
  const mount = { name: HELPER_VOLUME, mountPath: HELPER_MOUNT };
  const helperCommand = (...args: string[]): string[] => [`${HELPER_MOUNT}${HELPER_PATH}`, ...args];

  const strategy = config.strategy ?? "init-containers";
  const resources = config.resources ?? PREPULL_RESOURCES;
  const pullContainers: k8s.V1Container[] = pulls.map(({ image, pullPolicy }, i) => ({
    name: `pull-${i}`,
    image,
    ...(pullPolicy ? { imagePullPolicy: pullPolicy } : {}),
    command: helperCommand("exit"),
    volumeMounts: [{ ...mount, readOnly: true }],
    securityContext: CONTAINER_SECURITY,
    resources,
  }));
  const imageVolumes: k8s.V1Volume[] = pulls.map(({ image, pullPolicy }, i) => ({
    name: `image-${i}`,
    image: { reference: image, ...(pullPolicy ? { pullPolicy } : {}) },
  }));
  const pause: k8s.V1Container = {
    name: "pause",
    image: config.helperImage,
    command: [HELPER_PATH, "pause"],
    securityContext: CONTAINER_SECURITY,
    resources,
  };

  return strategy === "image-volumes"
    ? {
        containers: [{ ...pause, volumeMounts: imageVolumes.map((v, i) => ({ name: v.name, mountPath: `${HELPER_MOUNT}/images/${i}`, readOnly: true })) }],
        volumes: imageVolumes,
      }
    : {
        initContainers: [
          {
            name: "install-helper",
            image: config.helperImage,
            command: [HELPER_PATH, "install", `${HELPER_MOUNT}${HELPER_PATH}`],
            volumeMounts: [mount],
            securityContext: CONTAINER_SECURITY,
            resources,
          },
          ...pullContainers,
        ],
        containers: [pause],
        volumes: [{ name: HELPER_VOLUME, emptyDir: { sizeLimit: "16Mi" } }],
      };
}

/**
 * The DaemonSet for a subject, restricted to `nodeNames` (a run-once prepull's first wave; never
 * empty), or on every node its placement allows when `nodeNames` is undefined (keep-warm lists).
 */
export function renderDaemonSet(input: { subject: PrepullSubject; nodeNames: string[] | undefined; config: PrepullPodConfig }): k8s.V1DaemonSet {
  const { subject, config } = input;
  const name = subject.name;
  const labels = { ...config.extraLabels, [LABELS.managedBy]: MANAGED_BY, ...subject.labels };
  const podLabels = { ...labels, [LABELS.prepull]: name };
  const strategy = config.strategy ?? "init-containers";
  const placement = subject.placement;
  const podSpec: k8s.V1PodSpec = {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 0,
    ...(subject.serviceAccountName ? { serviceAccountName: subject.serviceAccountName } : {}),
    ...(subject.imagePullSecrets?.length ? { imagePullSecrets: subject.imagePullSecrets } : {}),
    ...(config.priorityClassName ? { priorityClassName: config.priorityClassName } : {}),
    ...placement,
    affinity: prepullAffinity(placement, input.nodeNames),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      fsGroup: RUN_AS,
      seccompProfile: { type: "RuntimeDefault" },
    },
    ...pullingContainers(subject.images, config),
  };

  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: {
      name,
      namespace: subject.namespace,
      labels,
      annotations: { ...subject.annotations, [STRATEGY_ANNOTATION]: strategy },
      ...(subject.ownerReferences ? { ownerReferences: subject.ownerReferences } : {}),
    },
    spec: {
      selector: { matchLabels: { [LABELS.prepull]: name } },
      // The controller widens the node list wave by wave; pods already running stay as they are.
      updateStrategy: { type: "OnDelete" },
      // Every wave is a template change, hence a ControllerRevision; keep no spare ones.
      revisionHistoryLimit: 0,
      template: {
        metadata: {
          labels: podLabels,
          annotations: {
            ...config.extraAnnotations,
            // Keep service meshes out: a sidecar would never let the pod finish initialising.
            "sidecar.istio.io/inject": "false",
            "linkerd.io/inject": "disabled",
          },
        },
        spec: podSpec,
      },
    },
  };
}
