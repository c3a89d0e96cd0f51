// kube-prepull's labels and annotations (spec §3) and the rules for their values. Pure: used by
// the validating webhook (reject with a message) and the controller (default + Warning event).

export const PREFIX = "kube-prepull.io/";

export const LABELS = {
  /** Namespace opt-in ("true") or opt-out ("false"). */
  enabled: `${PREFIX}enabled`,
  managedBy: "app.kubernetes.io/managed-by",
  /** On prepull DaemonSets and their pods: the Deployment they prepull for (workloadLabel("Deployment")). */
  deployment: `${PREFIX}deployment`,
  /** On prepull pods: the DaemonSet they belong to (its selector). */
  prepull: `${PREFIX}prepull`,
  /** On DaemonSets made by `kube-prepull run` and their pods: the run's id. The controller leaves them alone until they expire. */
  run: `${PREFIX}run`,
} as const;

export const MANAGED_BY = "kube-prepull";

/** On prepull DaemonSets and their pods: the workload they prepull for, by kind (kube-prepull.io/statefulset: db). */
export const workloadLabel = (kind: string): string => `${PREFIX}${kind.toLowerCase()}`;

/** Annotations users set on workloads. */
export const USER_ANNOTATIONS = {
  prepull: `${PREFIX}prepull`,
  hold: `${PREFIX}hold`,
  holdTimeout: `${PREFIX}hold-timeout`,
  nodes: `${PREFIX}nodes`,
  maxParallel: `${PREFIX}max-parallel`,
} as const;

/** Annotations kube-prepull writes on workloads. */
export const SYSTEM_ANNOTATIONS = {
  /** What the controller must do, written by the mutating webhook in the same write (spec §4). */
  request: `${PREFIX}request`,
  status: `${PREFIX}status`,
  heldBy: `${PREFIX}held-by`,
} as const;

export type NodesMode = "eligible" | "all";

export type MaxParallel = { kind: "count"; value: number } | { kind: "percent"; value: number };

export interface PrepullSettings {
  prepull: boolean;
  hold: boolean;
  holdTimeoutSeconds: number;
  nodes: NodesMode;
  maxParallel: MaxParallel;
}

export const DEFAULT_SETTINGS: PrepullSettings = {
  prepull: true,
  hold: false,
  holdTimeoutSeconds: 600,
  nodes: "eligible",
  maxParallel: { kind: "percent", value: 100 },
};

export const HOLD_TIMEOUT_MIN_SECONDS = 30;
export const HOLD_TIMEOUT_MAX_SECONDS = 6 * 3600;

export interface AnnotationProblem {
  key: string;
  message: string;
}

/** A Go-style duration of hours, minutes and seconds ("90s", "5m", "1h30m") in seconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match || text === "") return undefined;
  const [, h = "0", m = "0", s = "0"] = match;
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}


export function parseMaxParallel(text: string): MaxParallel | undefined {
  const percent = /^([1-9]\d{0,2})%$/.exec(text);
  if (percent) {
    const value = Number(percent[1]);
    return value <= 100 ? { kind: "percent", value } : undefined;
  }
  return /^[1-9]\d{0,5}$/.test(text) ? { kind: "count", value: Number(text) } : undefined;
}


type Rule<K extends keyof PrepullSettings> = {
  key: string;
  field: K;
  allowed: string;
  parse: (value: string) => PrepullSettings[K] | undefined;
};

const boolean = (value: string): boolean | undefined => (value === "true" ? true : value === "false" ? false : undefined);

const RULES: [
  Rule<"prepull">,
  Rule<"hold">,
  Rule<"holdTimeoutSeconds">,
  Rule<"nodes">,
  Rule<"maxParallel">,
] = [
  { key: USER_ANNOTATIONS.prepull, field: "prepull", allowed: `"true" or "false"`, parse: boolean },
  { key: USER_ANNOTATIONS.hold, field: "hold", allowed: `"true" or "false"`, parse: boolean },
  {
    key: USER_ANNOTATIONS.holdTimeout,
    field: "holdTimeoutSeconds",
    allowed: `a duration from 30s to 6h, such as "90s", "5m" or "1h30m"`,
    parse: (value) => {
      const seconds = parseDuration(value);
      return seconds !== undefined && seconds >= HOLD_TIMEOUT_MIN_SECONDS && seconds <= HOLD_TIMEOUT_MAX_SECONDS
        ? seconds
        : undefined;
    },
  },
  {
    key: USER_ANNOTATIONS.nodes,
    field: "nodes",
    allowed: `"eligible" or "all"`,
    parse: (value) => (value === "eligible" || value === "all" ? value : undefined),
  },
  {
    key: USER_ANNOTATIONS.maxParallel,
    field: "maxParallel",
    allowed: `a whole number of nodes (such as "10") or a percentage from 1% to 100% (such as "25%")`,
    parse: parseMaxParallel,
  },
];

const KNOWN_KEYS = new Set<string>([...Object.values(USER_ANNOTATIONS), ...Object.values(SYSTEM_ANNOTATIONS)]);

/**
 * The settings a Deployment's annotations ask for. A malformed value falls back to its default and
 * is reported, as is any unknown kube-prepull.io/ key.
 */
export function readSettings(annotations: Record<string, string> | undefined): {
  settings: PrepullSettings;
  problems: AnnotationProblem[];
} {
  const settings: PrepullSettings = { ...DEFAULT_SETTINGS };
  const problems: AnnotationProblem[] = [];
  // Admission reads objects before the apiserver validated them: a map that is not one is none.
  const values: Record<string, unknown> = typeof annotations === "object" && annotations !== null && !Array.isArray(annotations) ? annotations : {};
  for (const rule of RULES) {
    const value = values[rule.key];
    if (value === undefined) continue;
    if (typeof value !== "string") {
      problems.push({ key: rule.key, message: `${rule.key}: the value is not a string; allowed: ${rule.allowed}` });
      continue;
    }
    const parsed = rule.parse(value);
    if (parsed === undefined) {
      problems.push({ key: rule.key, message: `${rule.key}: invalid value "${value}"; allowed: ${rule.allowed}` });
    } else {
      (settings as unknown as Record<string, unknown>)[rule.field] = parsed;
    }
  }
  for (const key of Object.keys(values)) {
    if (key.startsWith(PREFIX) && !KNOWN_KEYS.has(key)) {
      problems.push({
        key,
        message: `${key}: unknown annotation; kube-prepull.io annotations are ${[...Object.values(USER_ANNOTATIONS)].join(", ")}`,
      });
    }
  }
  return { settings, problems };
}
