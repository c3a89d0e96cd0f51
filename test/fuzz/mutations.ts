// Structure-aware mutations of AdmissionReviews, in three layers: on the JSON tree (wrong types,
// nulls, missing fields, huge strings and arrays, unicode, deep nesting, prototype-ish keys, odd
// image references and kube-prepull annotations, other kinds and operations), on the JSON text
// (duplicate keys, truncation, stray bytes, odd numbers, a BOM) and on the HTTP request (content
// types, chunked bodies, invalid UTF-8, other paths and methods, a client that goes away).
import type { Random } from "./random.js";
import type { Json, JsonObject } from "./seed-reviews.js";

/** One HTTP request to the admission server, as the fuzzer sends it. */
export interface Wire {
  method: string;
  path: string;
  /** Header name → value; an absent Content-Type is no header at all. */
  headers: Record<string, string>;
  body: Buffer;
  /** Sent with Transfer-Encoding: chunked instead of Content-Length. */
  chunked: boolean;
  /** The client sends part of the body and closes the connection: no answer is expected. */
  abort: boolean;
}

type TreeMutation = (review: JsonObject, random: Random) => void;
type TextMutation = (text: string, random: Random) => string;
type WireMutation = (wire: Wire, random: Random) => void;

// ---------------------------------------------------------------- values

const UNICODE = [
  "é", "日本語のイメージ", "🚀🔥", "\u202eevil", "\u0000", "\ufeff", "\ud800", "\udfff", "a\u0301", "\u2028\u2029",
  "\\", "\"", "${x}", "%s%n%x", "~1/~0", "<script>", "\r\n\r\nHTTP/1.1 200 OK", "Ω≈ç√", "ﷺ", "\u{10ffff}",
];
const DANGEROUS_KEYS = ["__proto__", "toString", "valueOf", "constructor", "hasOwnProperty", "then", "length", ""];

/** A marker replaced in the JSON text by nesting `depth` deep (a tree that deep cannot be stringified). */
const deepMarker = (depth: number, arrays: boolean): string => `__fuzz_deep_${arrays ? "a" : "o"}_${depth}__`;
const DEEP_PATTERN = /"__fuzz_deep_([ao])_(\d+)__"/g;

export function expandDeep(text: string): string {
  return text.replace(DEEP_PATTERN, (_m, kind: string, depth: string) => {
    const n = Number(depth);
    return kind === "a" ? "[".repeat(n) + "]".repeat(n) : '{"a":'.repeat(n) + "1" + "}".repeat(n);
  });
}

function hugeLength(random: Random): number {
  const roll = random.next();
  if (roll < 0.003) return 9 * 2 ** 20; // over the 8 MiB limit: 413
  if (roll < 0.02) return 3 * 2 ** 20; // the apiserver's largest object
  if (roll < 0.15) return 2 ** 20;
  return random.pick([1000, 10_000, 100_000]);
}

const hugeString = (random: Random): string => `${random.int(1e9).toString(36)}-${"x".repeat(hugeLength(random))}`;

function hugeArray(random: Random): Json[] {
  const length = random.pick([1000, 10_000, 100_000]);
  const element: Json = random.pick<Json>([null, 0, "x", { name: "c", image: "nginx" }, [], {}]);
  return Array.from({ length }, () => structuredClone(element)); // distinct: a later step may change one
}

function dangerousObject(random: Random): Json {
  const entries = DANGEROUS_KEYS.filter(() => random.chance(0.5)).map((key) => `${JSON.stringify(key)}:${JSON.stringify(wrongType(random))}`);
  return JSON.parse(`{${entries.join(",")}}`) as Json; // JSON.parse makes "__proto__" an own key, as the server sees it
}

function wrongType(random: Random): Json {
  return random.pick<Json>([null, true, false, 0, -1, 1.5, 1e308, 2 ** 53 + 1, "", "x", "true", [], [null], {}, { "": "" }]);
}

/** Any odd value: a wrong type, huge, unicode, deep or with prototype-ish keys. */
function oddValue(random: Random): Json {
  switch (random.int(7)) {
    case 0: return hugeString(random);
    case 1: return hugeArray(random);
    case 2: return random.pick(UNICODE).repeat(1 + random.int(3));
    case 3: return deepMarker(random.pick([64, 1000, 10_000, 100_000]), random.chance(0.5));
    case 4: return dangerousObject(random);
    default: return wrongType(random);
  }
}

const DIGEST = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
const ODD_IMAGES = [
  "", " ", "  nginx  ", "nginx", "NGINX", "Nginx:1.27", "nginx:", ":tag", "@", `@${DIGEST}`, "nginx@sha256:abc", `nginx:1.27@${DIGEST}`,
  `nginx@${DIGEST}`, "docker.io/library/nginx:latest", "index.docker.io/nginx", "docker.io/nginx", "localhost/app", "localhost:5000/app:1",
  "[::1]:5000/app:1", "[fe80::1%eth0]:5000/app", "127.0.0.1:5000/a/b/c/d:1", "a".repeat(256) + "/x", "x/" + "a".repeat(300), "nginx:" + "t".repeat(129),
  "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c", "https://registry.example.com/app", "registry.example.com//app", "app:1.0\n",
  "héllo/wörld", "🚀", "nginx\u0000", "-nginx", "nginx-", "dock__er/x", "a/b:c:d", "reg:99999999/app", "Foo/bar", "foo/Bar",
];
const oddImage = (random: Random): Json => (random.chance(0.85) ? random.pick(ODD_IMAGES) : oddValue(random));

const ANNOTATION_KEYS = [
  "kube-prepull.io/hold", "kube-prepull.io/hold-timeout", "kube-prepull.io/max-parallel", "kube-prepull.io/nodes", "kube-prepull.io/prepull",
  "kube-prepull.io/request", "kube-prepull.io/held-by", "kube-prepull.io/status", "kube-prepull.io/unknown", "kube-prepull.io/", "KUBE-PREPULL.IO/hold",
  "kube-prepull.io/hold ", "kube-prepull.io/hold/x", "kube-prepull.io/~1", "kube-prepull.io/hold-timeout\u0000",
];
const ODD_ANNOTATION_VALUES = [
  "", "true", "false", "TRUE", "True", "true ", "yes", "1", "0", "-1", "0%", "100%", "101%", "1000%", "25 %", "1e3", "9999999", "1000000",
  "29s", "30s", "6h", "6h1s", "5m30s", "1h1h", "90", "-5m", "eligible", "all", "ALL", "null", "{}", "[]",
  "0123456789ab", '0123456789ab {"partition":"x"}', "0123456789ab {", "0123456789ab null", "0123456789ab []", " leading-space",
  '{"id":"x","images":"nginx","requestedAt":"now","hold":true}', '{"id":"x","images":[1],"requestedAt":"2026-01-01T00:00:00Z","hold":true}',
  '{"id":"x","images":[],"requestedAt":"2026-01-01T00:00:00Z","hold":true}', '{"phase":"Pulling","images":[],"nodes":null}', '{"phase":5}',
];
const oddAnnotationValue = (random: Random): Json => (random.chance(0.85) ? random.pick(ODD_ANNOTATION_VALUES) : oddValue(random));

// ---------------------------------------------------------------- the tree

type Path = (string | number)[];

/** Every path to a value in the tree, up to `limit` of them. */
function pathsOf(root: Json, limit = 20_000): Path[] {
  const out: Path[] = [];
  const walk = (node: Json, path: Path): void => {
    if (out.length >= limit) return;
    out.push(path);
    if (Array.isArray(node)) node.forEach((child, i) => walk(child, [...path, i]));
    else if (node && typeof node === "object") for (const [key, child] of Object.entries(node)) walk(child, [...path, key]);
  };
  walk(root, []);
  return out;
}

function parentOf(root: Json, path: Path): { parent: Json[] | JsonObject; key: string | number } | undefined {
  if (path.length === 0) return undefined;
  let node: Json = root;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as JsonObject)[key as string] ?? null;
  }
  if (node === null || typeof node !== "object") return undefined;
  return { parent: node, key: path[path.length - 1]! };
}

function setAt(root: JsonObject, path: Path, value: Json | undefined): void {
  const at = parentOf(root, path);
  if (!at) return;
  if (value === undefined) {
    if (Array.isArray(at.parent)) at.parent.splice(at.key as number, 1);
    else delete at.parent[at.key];
  } else {
    (at.parent as JsonObject)[at.key] = value;
  }
}

const INTERESTING: Path[] = [
  ["apiVersion"], ["kind"], ["request"], ["request", "uid"], ["request", "kind"], ["request", "kind", "kind"], ["request", "kind", "group"],
  ["request", "operation"], ["request", "object"], ["request", "oldObject"], ["request", "namespace"], ["request", "name"], ["request", "dryRun"],
  ["request", "userInfo"], ["request", "object", "metadata"], ["request", "object", "metadata", "annotations"], ["request", "object", "metadata", "name"],
  ["request", "object", "spec"], ["request", "object", "spec", "template"], ["request", "object", "spec", "replicas"], ["request", "object", "spec", "paused"],
  ["request", "object", "spec", "updateStrategy"], ["request", "object", "spec", "suspend"], ["request", "object", "spec", "parallelism"],
  ["request", "oldObject", "metadata", "annotations"], ["request", "oldObject", "spec"], ["request", "object", "spec", "jobTemplate"],
];

/** A path to mutate: half the time one kube-prepull reads, else any node of the review. */
function somePath(review: JsonObject, random: Random): Path {
  if (random.chance(0.5)) return random.pick(INTERESTING);
  const paths = pathsOf(review).filter((p) => p.length > 0);
  return paths.length > 0 ? random.pick(paths) : ["request"];
}

/** Paths whose last key is one of `keys`. */
const pathsEnding = (review: JsonObject, keys: string[]): Path[] => pathsOf(review).filter((p) => keys.includes(String(p[p.length - 1])));

function annotationsOf(review: JsonObject, random: Random): JsonObject {
  const objectName = random.chance(0.8) ? "object" : "oldObject";
  const request = (review.request && typeof review.request === "object" && !Array.isArray(review.request) ? review.request : (review.request = {}));
  const object = (request[objectName] && typeof request[objectName] === "object" && !Array.isArray(request[objectName]) ? request[objectName] : (request[objectName] = {}));
  const metadata = (object.metadata && typeof object.metadata === "object" && !Array.isArray(object.metadata) ? object.metadata : (object.metadata = {}));
  if (!metadata.annotations || typeof metadata.annotations !== "object" || Array.isArray(metadata.annotations)) metadata.annotations = {};
  return metadata.annotations;
}

export const TREE_MUTATIONS: Record<string, TreeMutation> = {
  "wrong type": (review, random) => setAt(review, somePath(review, random), wrongType(random)),
  "null": (review, random) => setAt(review, somePath(review, random), null),
  "missing field": (review, random) => setAt(review, somePath(review, random), undefined),
  "huge string": (review, random) => setAt(review, somePath(review, random), hugeString(random)),
  "huge array": (review, random) => setAt(review, somePath(review, random), hugeArray(random)),
  "unicode": (review, random) => setAt(review, somePath(review, random), random.pick(UNICODE).repeat(1 + random.int(4))),
  "deep nesting": (review, random) => setAt(review, somePath(review, random), deepMarker(random.pick([64, 1000, 10_000, 100_000]), random.chance(0.5))),
  "prototype keys": (review, random) => setAt(review, somePath(review, random), dangerousObject(random)),
  "odd value": (review, random) => setAt(review, somePath(review, random), oddValue(random)),
  "odd image": (review, random) => {
    const images = pathsEnding(review, ["image"]);
    if (images.length > 0) setAt(review, random.pick(images), oddImage(random));
  },
  "distinct huge images": (review, random) => {
    // Every image a different long name: what the server remembers per image name must stay bounded.
    const paths = pathsEnding(review, ["image"]);
    const length = Math.min(random.pick([10_000, 100_000, 300_000]), Math.floor(2 ** 21 / Math.max(1, paths.length)));
    for (const path of paths) setAt(review, path, `registry.example.com/${random.int(1e9).toString(36)}/${"a".repeat(length)}:v1`);
  },
  "many containers": (review, random) => {
    const lists = pathsEnding(review, ["containers", "initContainers"]);
    if (lists.length === 0) return;
    const count = random.pick([100, 1000, 10_000]);
    const distinct = random.chance(0.5);
    setAt(review, random.pick(lists), Array.from({ length: count }, (_, i) => ({ name: `c${i}`, image: distinct ? `registry.example.com/app-${i}:${random.int(1e6)}` : "nginx" })));
  },
  "odd containers": (review, random) => {
    const lists = pathsEnding(review, ["containers", "initContainers"]);
    if (lists.length > 0) setAt(review, random.pick(lists), random.pick<Json>([[null], [1], ["nginx"], [{}], [{ image: null }], [{ image: 5 }], [{ image: ["nginx"] }], [{ image: { toString: 1 } }], {}, "nginx", 0]));
  },
  "odd annotation": (review, random) => {
    annotationsOf(review, random)[random.pick(ANNOTATION_KEYS)] = oddAnnotationValue(random);
  },
  "many annotations": (review, random) => {
    const annotations = annotationsOf(review, random);
    const count = random.pick([100, 1000, 10_000]);
    for (let i = 0; i < count; i++) annotations[`${random.chance(0.5) ? "kube-prepull.io" : "example.com"}/key-${i}`] = random.chance(0.5) ? "true" : `value-${i}`;
  },
  "prototype annotations": (review, random) => {
    const annotations = annotationsOf(review, random);
    for (const key of DANGEROUS_KEYS) if (random.chance(0.5)) Object.defineProperty(annotations, key, { value: oddAnnotationValue(random), enumerable: true, writable: true, configurable: true });
  },
  "other kind": (review, random) => {
    setAt(review, ["request", "kind"], random.pick<Json>([
      { group: "apps", version: "v1", kind: random.pick(["Deployment", "StatefulSet", "DaemonSet"]) }, { group: "batch", version: "v1", kind: random.pick(["Job", "CronJob"]) },
      { group: "batch", version: "v1", kind: "Deployment" }, { group: "", version: "v1", kind: "Pod" }, { group: "apps", version: "v1beta2", kind: "Deployment" },
      { group: "apps", version: "v1", kind: "deployment" }, { kind: "Deployment" }, { group: 5, kind: "Deployment" },
    ]));
  },
  "other operation": (review, random) => setAt(review, ["request", "operation"], random.pick<Json>(["CREATE", "UPDATE", "DELETE", "CONNECT", "create", "PATCH", "", " CREATE", null, 1])),
  "same object before and after": (review) => {
    const request = review.request as JsonObject | undefined;
    if (request && typeof request === "object") request.oldObject = structuredClone(request.object ?? null);
  },
  "swapped objects": (review) => {
    const request = review.request as JsonObject | undefined;
    if (request && typeof request === "object") [request.object, request.oldObject] = [request.oldObject ?? null, request.object ?? null];
  },
  "odd uid": (review, random) => setAt(review, ["request", "uid"], random.pick<Json>(["", " ", "x".repeat(100_000), "🚀", "\u0000", "a\"b", 7, null, ["uid"], { uid: "x" }])),
  "odd apiVersion": (review, random) => setAt(review, [random.pick(["apiVersion", "kind"]), ], random.pick<Json>(["admission.k8s.io/v1beta1", "admission.k8s.io/v1 ", "AdmissionReview", "v1", "", null, 1])),
};

// ---------------------------------------------------------------- the text

/** Positions of `"key":` in the text (a sample of them in long texts). */
function keyPositions(text: string, random: Random): Array<{ at: number; key: string }> {
  const out: Array<{ at: number; key: string }> = [];
  const pattern = /"([A-Za-z][\w.\-/]{0,60})":/g;
  const from = text.length > 200_000 ? random.int(text.length - 100_000) : 0;
  pattern.lastIndex = from;
  for (let m = pattern.exec(text); m && out.length < 2000; m = pattern.exec(text)) out.push({ at: m.index, key: m[1]! });
  return out;
}

export const TEXT_MUTATIONS: Record<string, TextMutation> = {
  "duplicate key": (text, random) => {
    const keys = keyPositions(text, random);
    const uids = keys.filter((k) => k.key === "uid");
    const target = uids.length > 0 && random.chance(0.4) ? random.pick(uids) : keys.length > 0 ? random.pick(keys) : undefined;
    if (!target) return text;
    const value = target.key === "uid" && random.chance(0.7) ? JSON.stringify(`dup-${random.int(1e6)}`) : JSON.stringify(wrongType(random));
    // Inserted before: the original value, later in the text, is the one JSON.parse keeps; after: the new one.
    if (random.chance(0.5)) return `${text.slice(0, target.at)}"${target.key}":${value},${text.slice(target.at)}`;
    const end = text.indexOf(",", target.at);
    return end < 0 ? text : `${text.slice(0, end)},"${target.key}":${value}${text.slice(end)}`;
  },
  "truncated": (text, random) => text.slice(0, random.int(text.length)),
  "stray characters": (text, random) => {
    const at = random.int(text.length + 1);
    return text.slice(0, at) + random.pick(["\u0000", "}", "]", ",", "\"", "\\", "\ud800", ":", "{", "NaN", "//", "/*"]) + text.slice(at);
  },
  "odd number": (text, random) => {
    const numbers = [...text.slice(0, 200_000).matchAll(/:(-?\d+(?:\.\d+)?)([,}\]])/g)];
    if (numbers.length === 0) return text;
    const m = random.pick(numbers);
    const replacement = random.pick(["1e400", "-0", "01", "1.", ".5", "NaN", "Infinity", "123456789012345678901234567890", "-1e-400", "0x10"]);
    return text.slice(0, m.index) + ":" + replacement + m[2]! + text.slice(m.index + m[0].length);
  },
  "whitespace": (text, random) => `${random.pick([" ", "\n", "\t\r\n", " ".repeat(100_000)])}${text}${random.pick(["", " ", "\n\n"])}`,
  "byte order mark": (text) => `\ufeff${text}`,
  "trailing garbage": (text, random) => text + random.pick(["x", "{}", "]", "\u0000", ",", " {\"apiVersion\":1}"]),
  "not a review": (_text, random) => random.pick(["[]", "null", "0", "\"review\"", "{}", "true", "{\"request\":{}}", "[{\"apiVersion\":\"admission.k8s.io/v1\"}]"]),
};

// ---------------------------------------------------------------- the HTTP request

const RESOURCES = ["deployments", "statefulsets", "daemonsets", "jobs", "cronjobs"];

export const WIRE_MUTATIONS: Record<string, WireMutation> = {
  "content type": (wire, random) => {
    const type = random.pick([undefined, "text/plain", "application/json; charset=utf-8", "application/json; charset=latin1", "Application/JSON",
      "application/json;", "application/json ; charset=\"UTF-8\"", "application/merge-patch+json", "multipart/form-data; boundary=x",
      "application/x-www-form-urlencoded", "application/yaml", "", "application/json, text/plain", "*/*", "application/json; charset=utf-16"]);
    if (type === undefined) delete wire.headers["content-type"];
    else wire.headers["content-type"] = type;
  },
  "chunked": (wire) => {
    wire.chunked = true;
  },
  "invalid UTF-8": (wire, random) => {
    const at = random.int(wire.body.length + 1);
    const bytes = Buffer.from(random.pick([[0xff], [0xfe, 0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]));
    wire.body = Buffer.concat([wire.body.subarray(0, at), bytes, wire.body.subarray(at)]);
  },
  "other path": (wire, random) => {
    wire.path = random.pick([`/${random.pick(["mutate", "validate"])}/${random.pick(RESOURCES)}`, "/mutate/pods", "/", "/mutate", "/validate/deployments/",
      "/mutate/deployments?timeout=10s", "/MUTATE/deployments", "/mutate/%2e%2e/deployments", "/healthz", "//mutate/deployments", `/${"a".repeat(8000)}`]);
  },
  "other method": (wire, random) => {
    wire.method = random.pick(["GET", "PUT", "PATCH", "DELETE", "OPTIONS"]);
  },
  "client goes away": (wire) => {
    wire.abort = true;
  },
};

export const LAYERS = { tree: TREE_MUTATIONS, text: TEXT_MUTATIONS, wire: WIRE_MUTATIONS } as const;
export type Layer = keyof typeof LAYERS;
