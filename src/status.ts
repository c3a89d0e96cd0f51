// `kube-prepull status` at the edge: its API reads. One list per workload kind — namespaced unless
// every namespace is asked for, so a user with namespaced permissions can use it — and, with
// --watch, one list+watch per kind (the controller's Reflector: reconnects, relists on 410). What
// is shown is decided in src/cli/status-view.ts.
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { SYSTEM_ANNOTATIONS } from "./prepull/annotations.js";
import { apiErrorMessage } from "./kube/cluster-actions.js";
import { Reflector, type ObjectEvent } from "./kube/reflector.js";
import type { ListParams, Workload, WorkloadClients, WorkloadObject } from "./workloads/workload.js";
import { ClusterError } from "./cli/exit-codes.js";
import { httpStatusOf } from "./kube/api-errors.js";

export interface StatusQuery {
  kubeConfig: k8s.KubeConfig;
  /** undefined: every namespace. */
  namespace: string | undefined;
  workloads: readonly Workload[];
  /** Only the workloads of this name. */
  name?: string;
}

export interface FoundWorkload {
  workload: Workload;
  object: WorkloadObject;
}

type Lister = (params: ListParams) => Promise<{ items: WorkloadObject[]; metadata?: { resourceVersion?: string; _continue?: string } }>;

function listerOf(clients: WorkloadClients, workload: Workload, namespace: string | undefined): Lister {
  return (params) => (namespace === undefined ? workload.api.list(clients, params) : workload.api.listNamespaced(clients, namespace, params));
}

const clientsOf = (kubeConfig: k8s.KubeConfig): WorkloadClients => ({ apps: kubeConfig.makeApiClient(k8s.AppsV1Api), batch: kubeConfig.makeApiClient(k8s.BatchV1Api) });

const selectorOf = (query: StatusQuery): { fieldSelector?: string } => (query.name ? { fieldSelector: `metadata.name=${query.name}` } : {});

/** What is kept of a workload: its name and kube-prepull's annotations (a cluster has many workloads). */
function slim(object: WorkloadObject): WorkloadObject {
  const annotations = Object.fromEntries(Object.entries(object.metadata?.annotations ?? {}).filter(([key]) => key === SYSTEM_ANNOTATIONS.status || key === SYSTEM_ANNOTATIONS.heldBy));
  const { name, namespace, resourceVersion } = object.metadata ?? {};
  return { metadata: { name, namespace, resourceVersion, annotations } };
}

async function listAll(list: Lister, query: StatusQuery): Promise<WorkloadObject[]> {
  const objects: WorkloadObject[] = [];
  let token: string | undefined;
  do {
    const page = await list({ ...selectorOf(query), limit: 500, ...(token ? { _continue: token } : {}) });
    objects.push(...page.items.map(slim));
    token = page.metadata?._continue || undefined;
  } while (token);
  return objects;
}

const where = (namespace: string | undefined): string => (namespace === undefined ? "in any namespace" : `in namespace ${namespace}`);

export interface Listed {
  found: FoundWorkload[];
  /** Kinds the user may not list, left out (with others listed): "cannot list cronjobs …: forbidden". */
  forbidden: { workload: Workload; message: string }[];
}

/**
 * The workloads of the query's kinds (and name), each kind listed once. A kind the user may not
 * list is left out and named when others could be listed (a namespace's users often may read
 * Deployments but not CronJobs); any other failure, or every kind forbidden, is a ClusterError.
 */
export async function listWorkloads(query: StatusQuery): Promise<Listed> {
  const clients = clientsOf(query.kubeConfig);
  const lists = await Promise.all(query.workloads.map(async (workload) => {
    try {
      const objects = await listAll(listerOf(clients, workload, query.namespace), query);
      return { found: objects.map((object) => ({ workload, object })) };
    } catch (error) {
      const message = `cannot list ${workload.resource} ${where(query.namespace)}: ${apiErrorMessage(error)}`;
      if (httpStatusOf(error) === 403) return { forbidden: { workload, message } };
      throw new ClusterError(message);
    }
  }));
  const forbidden = lists.flatMap((l) => l.forbidden ?? []);
  if (forbidden.length === lists.length) throw new ClusterError(forbidden.map((f) => f.message).join("; "));
  return { found: lists.flatMap((l) => l.found ?? []), forbidden };
}

const collectionPath = (workload: Workload, namespace: string | undefined): string =>
  `/apis/${workload.group}/${workload.version}${namespace === undefined ? "" : `/namespaces/${namespace}`}/${workload.resource}`;

/**
 * Follows the query's workloads with watches (no polling): `onEvent` for every change the
 * watches bring, and for every workload again when a watch relists. Stop it with the returned function.
 */
export function watchWorkloads(query: StatusQuery, onEvent: (type: ObjectEvent, found: FoundWorkload) => void, log: Logger): () => void {
  const clients = clientsOf(query.kubeConfig);
  const reflectors = query.workloads.map((workload) => {
    const reflector = new Reflector<WorkloadObject>({
      name: workload.resource,
      kubeConfig: query.kubeConfig,
      path: collectionPath(workload, query.namespace),
      list: listerOf(clients, workload, query.namespace),
      ...selectorOf(query),
      transform: slim,
      onEvent: (type, object) => onEvent(type, { workload, object }),
      log,
    });
    reflector.start();
    return reflector;
  });
  return () => reflectors.forEach((r) => r.stop());
}
