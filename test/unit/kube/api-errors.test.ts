// Which failed API calls mean the apiserver itself is unavailable (retried within seconds) and
// which do not (the work queue's backoff): src/kube/api-errors.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { isApiserverUnavailable, isUnavailable } from "../../../src/kube/api-errors.js";

const apiException = (code: number, message: string): k8s.ApiException<string> =>
  new k8s.ApiException(code, `HTTP-Code: ${code}`, JSON.stringify({ kind: "Status", code, message }), {});

describe("API errors", () => {
  it("no answer, 429 and 5xx are the apiserver unavailable", () => {
    assert.equal(isApiserverUnavailable(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })), true);
    assert.equal(isApiserverUnavailable(apiException(429, "too many requests")), true);
    assert.equal(isApiserverUnavailable(apiException(500, "etcdserver: request timed out")), true);
    assert.equal(isApiserverUnavailable(apiException(503, "the server is currently unable to handle the request")), true);
  });

  it("a webhook of someone else's that is down is a 500, but no outage of the apiserver", () => {
    const webhookDown = apiException(500, 'Internal error occurred: failed calling webhook "broken.daemonsets.example.com": connection refused');
    assert.equal(isUnavailable(webhookDown), true);
    assert.equal(isApiserverUnavailable(webhookDown), false);
  });

  it("refusals are not unavailability", () => {
    for (const code of [400, 403, 404, 409, 422]) assert.equal(isApiserverUnavailable(apiException(code, "no")), false, String(code));
  });
});
