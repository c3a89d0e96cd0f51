// Container image references, parsed and normalised as the container runtimes do, so that the
// same image written two ways ("nginx", "docker.io/library/nginx:latest") compares equal.
//
// A port of github.com/distribution/reference (regexp.go, normalize.go: ParseNormalizedNamed,
// ParseDockerRef): no npm package implements it faithfully (IPv6 hosts, docker.io/library
// normalisation, tag+digest), see docs/architecture.md "The request".

// Grammar (distribution/reference regexp.go):
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [domain '/'] remote-name
const alphanumeric = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainNameComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const ipv6address = "\\[(?:[a-fA-F0-9:]+)\\]";
const domainAndPort = `(?:${domainName}|${ipv6address})(?::[0-9]+)?`;
const tag = "[\\w][\\w.-]{0,127}";
const digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";

const referencePattern = new RegExp(`^((?:${domainAndPort}/)?${remoteName})(?::(${tag}))?(?:@(${digest}))?$`);
const namePattern = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const identifierPattern = /^[a-f0-9]{64}$/;

const NAME_TOTAL_LENGTH_MAX = 255;
const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";

export interface ImageReference {
  /** Registry host, with port if any: "docker.io", "registry.example.com:5000", "[::1]:5000". */
  domain: string;
  /** Repository path: "library/nginx", "team/app". */
  path: string;
  tag?: string;
  digest?: string;
}

export class InvalidImageReference extends Error {
  constructor(
    readonly reference: string,
    reason: string,
  ) {
    super(`invalid image reference "${reference}": ${reason}`);
  }
}

// splitDockerDomain: the first component is a registry when it contains "." or ":", is
// "localhost", or has upper case (repository paths may not); otherwise the image is on Docker Hub.
function splitDockerDomain(name: string): [string, string] {
  const slash = name.indexOf("/");
  if (slash < 0) return [DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name];
  const maybeDomain = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remote: string;
  if (maybeDomain === "localhost" || /[.:]/.test(maybeDomain) || maybeDomain.toLowerCase() !== maybeDomain) {
    [domain, remote] = [maybeDomain, rest];
  } else if (maybeDomain === LEGACY_DEFAULT_DOMAIN) {
    [domain, remote] = [DEFAULT_DOMAIN, rest];
  } else {
    [domain, remote] = [DEFAULT_DOMAIN, name];
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remote.includes("/")) remote = OFFICIAL_REPO_PREFIX + remote;
  return [domain, remote];
}

/** ParseNormalizedNamed: accepts familiar forms ("nginx:1.27") and returns the fully qualified parts. */
export function parseImageReference(input: string): ImageReference {
  if (identifierPattern.test(input)) {
    throw new InvalidImageReference(input, "cannot specify 64-byte hexadecimal strings");
  }
  const [domain, remainder] = splitDockerDomain(input);
  const colon = remainder.indexOf(":");
  const remote = colon >= 0 ? remainder.slice(0, colon) : remainder;
  if (remote.toLowerCase() !== remote) {
    throw new InvalidImageReference(input, `repository name (${remote}) must be lowercase`);
  }
  const match = referencePattern.exec(`${domain}/${remainder}`);
  if (!match) throw new InvalidImageReference(input, "invalid reference format");
  const name = match[1]!;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw new InvalidImageReference(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const parts = namePattern.exec(name);
  if (!parts) throw new InvalidImageReference(input, "invalid reference format");
  return {
    domain: parts[1] ?? "",
    path: parts[2]!,
    ...(match[2] !== undefined ? { tag: match[2] } : {}),
    ...(match[3] !== undefined ? { digest: match[3] } : {}),
  };
}

/**
 * The identity of an image for comparison (ParseDockerRef): fully qualified, ":latest" when there is
 * neither tag nor digest, and only the digest when there are both (the digest decides the content).
 */
export function canonicalImage(ref: ImageReference): string {
  const name = `${ref.domain}/${ref.path}`;
  if (ref.digest) return `${name}@${ref.digest}`;
  return `${name}:${ref.tag ?? "latest"}`;
}

// imageKey runs for every image name every node reports (status.images) on every target plan, and
// twice per container on every admission: a cluster has few distinct names, so the answers are
// remembered. Bounded: when full it starts over (a Map keeps no recency; an LRU buys nothing here).
// Only names of a usual length are remembered: admission sees objects before the apiserver
// validates them, and 10,000 remembered names of 100 KB each would let anyone who may dry-run a
// workload grow the server by a GiB (found by the admission fuzzer, docs/reliability.md).
const IMAGE_KEY_CACHE_LIMIT = 10_000;
const IMAGE_KEY_CACHED_LENGTH = 512;
const imageKeys = new Map<string, string>();

function computeImageKey(reference: string): string {
  try {
    return canonicalImage(parseImageReference(reference));
  } catch {
    return reference;
  }
}

/** The canonical form of a reference string, or the string itself when it does not parse. */
export function imageKey(reference: string): string {
  if (reference.length > IMAGE_KEY_CACHED_LENGTH) return computeImageKey(reference);
  const known = imageKeys.get(reference);
  if (known !== undefined) return known;
  const key = computeImageKey(reference);
  if (imageKeys.size >= IMAGE_KEY_CACHE_LIMIT) imageKeys.clear();
  imageKeys.set(reference, key);
  return key;
}

