// What the mutating webhook records on a Deployment for the controller (spec §4: "recorded on the
// object in the same write"), and the image arithmetic behind it. Pure.
import { createHash } from "node:crypto";
import type { V1PodSpec } from "@kubernetes/client-node";
import { imageKey } from "./image-reference.js";

export interface PrepullRequest {
  /** Identifies this request; `held-by` carries it while the request holds the rollout. */
  id: string;
  /** The new images, verbatim as in the pod template (the node cache is keyed by the exact string). */
  images: string[];
  /** RFC 3339; the hold timeout counts from here. */
  requestedAt: string;
  /** Whether this request holds the rollout. */
  hold: boolean;
}

// Admission reads objects before the apiserver validated them: a list that is not one, or an image
// that is not a string, counts as no image rather than an error.
const containersOf = (list: unknown): Array<{ image?: unknown } | null | undefined> => (Array.isArray(list) ? (list as Array<{ image?: unknown }>) : []);

/** Every image of a pod spec (init containers first), verbatim, without duplicates by identity. */
export function templateImages(spec: V1PodSpec | undefined): string[] {
  const seen = new Set<string>();
  const images: string[] = [];
  for (const container of [...containersOf(spec?.initContainers), ...containersOf(spec?.containers)]) {
    const raw = typeof container === "object" ? container?.image : undefined;
    const image = typeof raw === "string" ? raw.trim() : "";
    if (!image) continue;
    const key = imageKey(image);
    if (seen.has(key)) continue;
    seen.add(key);
    images.push(image);
  }
  return images;
}

/** Images of `after` that `before` does not have, compared by normalised identity (spec §4). */
export function newImages(before: V1PodSpec | undefined, after: V1PodSpec | undefined): string[] {
  const old = new Set(templateImages(before).map(imageKey));
  return templateImages(after).filter((image) => !old.has(imageKey(image)));
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A short hash of an image set, independent of order and spelling. */
export function imageSetHash(images: string[]): string {
  return sha256([...new Set(images.map(imageKey))].sort().join("\n")).slice(0, 10);
}

export function newRequest(images: string[], hold: boolean, now: Date): PrepullRequest {
  const requestedAt = now.toISOString();
  return { id: sha256(`${requestedAt}\n${images.join("\n")}`).slice(0, 12), images, requestedAt, hold };
}

export function encodeRequest(request: PrepullRequest): string {
  return JSON.stringify(request);
}

/** The request recorded in an annotation, or undefined when it is absent or not one of ours. */
export function decodeRequest(text: string | undefined): PrepullRequest | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<PrepullRequest>;
    if (
      typeof value.id === "string" &&
      Array.isArray(value.images) &&
      value.images.every((i) => typeof i === "string") &&
      typeof value.requestedAt === "string" &&
      !Number.isNaN(Date.parse(value.requestedAt)) &&
      typeof value.hold === "boolean"
    ) {
      return { id: value.id, images: value.images, requestedAt: value.requestedAt, hold: value.hold };
    }
  } catch {
    // not JSON: treated as absent
  }
  return undefined;
}
