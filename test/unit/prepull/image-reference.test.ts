// Vectors from github.com/distribution/reference normalize_test.go and reference_test.go.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalImage, imageKey, parseImageReference } from "../../../src/prepull/image-reference.js";

const DIGEST = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";

describe("image references", () => {
  it("accepts the valid repository names of the reference implementation", () => {
    for (const name of [
      "docker/docker", "library/debian", "debian", "docker.io/docker/docker", "docker.io/library/debian",
      "docker.io/debian", "index.docker.io/docker/docker", "index.docker.io/library/debian", "index.docker.io/debian",
      "127.0.0.1:5000/docker/docker", "127.0.0.1:5000/library/debian", "127.0.0.1:5000/debian",
      "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "[fc00::1]:5000/docker",
      "[fc00::1]:5000/docker/docker", "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
      "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "Docker/docker", "DOCKER/docker",
      "docker-rules/docker", "docker---rules/docker", "doc/docker", "d/docker", "jess/t", "dock__er/docker",
    ]) {
      assert.doesNotThrow(() => parseImageReference(name), name);
    }
  });

  it("rejects the invalid names of the reference implementation", () => {
    for (const name of [
      "https://github.com/docker/docker", "docker/Docker", "-docker", "-docker/docker", "-docker.io/docker/docker",
      "docker///docker", "docker.io/docker/Docker", "docker.io/docker///docker", "[fc00::1]", "[fc00::1]:5000",
      "fc00::1:5000/debian", "[fe80::1%eth0]:5000/debian", "[2001:db8:3:4::192.0.2.33]:5000/debian",
      "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "docker-/docker", "-docker-/docker",
      "____/____", "_docker/_docker", "dock..er/docker", "dock_.er/docker", "dock-.er/docker", "docker/", "",
      "a".repeat(256) + "/docker", "nginx:-bad", "nginx@sha256:abc", "nginx:" + "t".repeat(129),
    ]) {
      assert.throws(() => parseImageReference(name), /invalid image reference/, name);
    }
  });

  const cases: Array<[input: string, domain: string, path: string]> = [
    ["fooo/bar", "docker.io", "fooo/bar"],
    ["index.docker.io/fooo/bar", "docker.io", "fooo/bar"],
    ["library/ubuntu", "docker.io", "library/ubuntu"],
    ["ubuntu", "docker.io", "library/ubuntu"],
    ["docker.io/foo", "docker.io", "library/foo"],
    ["docker.io/library/foo/bar", "docker.io", "library/foo/bar"],
    ["127.0.0.1:8000/private/moonbase", "127.0.0.1:8000", "private/moonbase"],
    ["example.com:8000/privatebasee", "example.com:8000", "privatebasee"],
    ["test_com/foo", "docker.io", "test_com/foo"],
    ["test-com:8080/foo", "test-com:8080", "foo"],
    ["xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"],
    ["localhost/foo", "localhost", "foo"],
    ["Foo/bar", "Foo", "bar"],
    ["[::1]:5000/app", "[::1]:5000", "app"],
  ];
  for (const [input, domain, path] of cases) {
    it(`splits ${input} into ${domain} and ${path}`, () => {
      const ref = parseImageReference(input);
      assert.equal(ref.domain, domain);
      assert.equal(ref.path, path);
    });
  }

  it("keeps tag and digest, and compares by digest when both are present (ParseDockerRef)", () => {
    const ref = parseImageReference(`busybox:latest@${DIGEST}`);
    assert.deepEqual(ref, { domain: "docker.io", path: "library/busybox", tag: "latest", digest: DIGEST });
    assert.equal(canonicalImage(ref), `docker.io/library/busybox@${DIGEST}`);
  });

  it("treats the same image written two ways as one", () => {
    const same: Array<[string, string]> = [
      ["nginx", "docker.io/library/nginx:latest"],
      ["nginx:1.27", "index.docker.io/library/nginx:1.27"],
      ["library/nginx", "docker.io/nginx"],
      [`redis:7@${DIGEST}`, `docker.io/library/redis@${DIGEST}`],
    ];
    for (const [a, b] of same) assert.equal(imageKey(a), imageKey(b), `${a} = ${b}`);
    const different: Array<[string, string]> = [
      ["nginx:1.27", "nginx:1.28"],
      ["registry.example.com:5000/app", "registry.example.com/app"],
      ["team/app", "library/team/app"],
      [`app@${DIGEST}`, "app"],
    ];
    for (const [a, b] of different) assert.notEqual(imageKey(a), imageKey(b), `${a} ≠ ${b}`);
  });

  it("keys an unparseable reference by its own text", () => {
    assert.equal(imageKey("Not A Valid:Image"), "Not A Valid:Image");
  });

  it("answers the same for a name seen before, also after more names than its memory holds", () => {
    assert.equal(imageKey("nginx"), "docker.io/library/nginx:latest");
    for (let i = 0; i < 12_000; i++) assert.equal(imageKey(`registry.example.com/app-${i}:v1`), `registry.example.com/app-${i}:v1`);
    assert.equal(imageKey("nginx"), "docker.io/library/nginx:latest");
    assert.equal(imageKey("Not A Valid:Image"), "Not A Valid:Image");
  });
});
