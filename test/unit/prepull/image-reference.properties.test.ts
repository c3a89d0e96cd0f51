// Properties of image reference normalisation (fast-check): a reference written from generated
// parts parses back to those parts, normalised by an independent model of the Docker rules
// (docker.io for no domain or index.docker.io, library/ for a single-component Docker Hub name);
// the canonical form round-trips; imageKey is idempotent on any string.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { canonicalImage, imageKey, parseImageReference, type ImageReference } from "../../../src/prepull/image-reference.js";

const chars = (alphabet: string, minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...alphabet), minLength, maxLength });

const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";
// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+
const pathComponent = (separators: string[]): fc.Arbitrary<string> =>
  fc.tuple(chars(ALNUM, 1, 6), fc.array(fc.tuple(fc.constantFrom(...separators), chars(ALNUM, 1, 6)), { maxLength: 2 }))
    .map(([first, rest]) => first + rest.map(([s, c]) => s + c).join(""));
const domainComponent = fc.tuple(chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 1, 1), chars("abcdefghijklmnopqrstuvwxyz0123456789-", 0, 6), chars(ALNUM, 1, 1))
  .map(([a, b, c]) => a + b + c);
const port = fc.integer({ min: 1, max: 65535 }).map((p) => `:${p}`);
// Only what splitDockerDomain reads as a registry: a "." or ":" in it, localhost, or upper case.
const domain: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom("docker.io", "index.docker.io", "localhost", "localhost:5000", "[::1]:5000", "[fd00:1:2::3]:443", "Registry"),
  fc.tuple(domainComponent, fc.array(domainComponent, { minLength: 1, maxLength: 2 }), fc.option(port, { nil: "" })).map(([a, rest, p]) => [a, ...rest].join(".") + p),
  fc.tuple(domainComponent, port).map(([a, p]) => a + p),
);
const tag = fc.tuple(chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", 1, 1), chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", 0, 12)).map(([a, b]) => a + b);
const digest = chars("0123456789abcdef", 64, 64).map((hex) => `sha256:${hex}`);

interface Parts {
  domain: string | undefined;
  path: string[];
  tag: string | undefined;
  digest: string | undefined;
}

const parts: fc.Arbitrary<Parts> = fc.record({
  domain,
  path: fc.array(pathComponent([".", "_", "__", "-", "--"]), { minLength: 1, maxLength: 3 }),
  tag: fc.option(tag, { nil: undefined }),
  digest: fc.option(digest, { nil: undefined }),
}).filter((p) =>
  // Without a domain, a first component with a "." would be read as one (so would "localhost").
  (p.domain !== undefined || (!p.path[0]!.includes(".") && p.path[0] !== "localhost")) &&
  `${p.domain ?? "docker.io"}/${p.path.join("/")}`.length <= 240);

const written = (p: Parts): string => `${p.domain ? `${p.domain}/` : ""}${p.path.join("/")}${p.tag ? `:${p.tag}` : ""}${p.digest ? `@${p.digest}` : ""}`;

/** The Docker normalisation rules, written apart from the implementation. */
function expected(p: Parts): ImageReference {
  const domain = p.domain === undefined || p.domain === "index.docker.io" ? "docker.io" : p.domain;
  const path = domain === "docker.io" && p.path.length === 1 ? `library/${p.path[0]}` : p.path.join("/");
  return { domain, path, ...(p.tag ? { tag: p.tag } : {}), ...(p.digest ? { digest: p.digest } : {}) };
}

describe("image reference normalisation (properties)", () => {
  it("parses a reference written from parts back to those parts, normalised", () => {
    fc.assert(fc.property(parts, (p) => {
      assert.deepEqual(parseImageReference(written(p)), expected(p));
    }), { numRuns: 2000 });
  });

  it("round-trips the canonical form: it parses to the same identity and is its own key", () => {
    fc.assert(fc.property(parts, (p) => {
      const canonical = canonicalImage(parseImageReference(written(p)));
      assert.equal(canonicalImage(parseImageReference(canonical)), canonical);
      assert.equal(imageKey(written(p)), canonical);
      assert.equal(imageKey(canonical), canonical);
    }), { numRuns: 2000 });
  });

  it("is idempotent on any string, reference or not", () => {
    fc.assert(fc.property(fc.oneof(parts.map(written), fc.string(), fc.string({ unit: fc.constantFrom(..."aZ09:/@.-_[]") })), (text) => {
      assert.equal(imageKey(imageKey(text)), imageKey(text));
    }), { numRuns: 3000 });
  });
});
