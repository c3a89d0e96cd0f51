// One fuzz case: a seed review (kind, operation, webhook) and a few mutation steps, each with its own
// seed, so that a case is rebuilt exactly from (run seed, index) and any subset of its steps.
import { expandDeep, LAYERS, type Layer, type Wire } from "./mutations.js";
import { deriveSeed, Random } from "./random.js";
import { resourceOf, SEED_KINDS, SEED_OPERATIONS, seedReview, type SeedKind, type SeedOperation } from "./seed-reviews.js";

export interface Step {
  layer: Layer;
  name: string;
  seed: number;
}

export interface FuzzCase {
  seed: number;
  index: number;
  kind: SeedKind;
  operation: SeedOperation;
  webhook: "mutate" | "validate";
  baseSeed: number;
  steps: Step[];
}

const LAYER_WEIGHTS: Array<[Layer, number]> = [["tree", 0.65], ["text", 0.2], ["wire", 0.15]];

function pickLayer(random: Random): Layer {
  let roll = random.next();
  for (const [layer, weight] of LAYER_WEIGHTS) {
    if (roll < weight) return layer;
    roll -= weight;
  }
  return "tree";
}

/** `only`: every case has exactly this one step (a focused run). */
export function generateCase(seed: number, index: number, only?: Pick<Step, "layer" | "name">): FuzzCase {
  const random = new Random(deriveSeed(seed, index));
  const kind = random.pick(SEED_KINDS);
  const operation = random.pick<SeedOperation>([...SEED_OPERATIONS, "CREATE", "UPDATE", "CREATE", "UPDATE"]);
  const webhook = random.chance(0.5) ? "mutate" : "validate";
  // One case in ten is a seed review as the apiserver sends it: those must be answered 200.
  const count = random.chance(0.1) ? 0 : 1 + random.int(3);
  const steps: Step[] = Array.from({ length: count }, (_, j) => {
    const layer = pickLayer(random);
    // Long distinct image names are weighted up: memory growth per image name shows only in numbers.
    const name = layer === "tree" && random.chance(0.15) ? "distinct huge images" : random.pick(Object.keys(LAYERS[layer]));
    return { layer, name, seed: deriveSeed(seed, index, j + 1) };
  });
  const focused = only ? [{ ...only, seed: deriveSeed(seed, index, 1) }] : steps;
  return { seed, index, kind, operation, webhook, baseSeed: deriveSeed(seed, index, 0), steps: focused };
}

/** The HTTP request of a case (only the given steps, when minimising). */
export function buildWire(fuzzCase: FuzzCase, steps: Step[] = fuzzCase.steps): Wire {
  const review = seedReview(fuzzCase.kind, fuzzCase.operation, new Random(fuzzCase.baseSeed));
  for (const step of steps) if (step.layer === "tree") LAYERS.tree[step.name]!(review, new Random(step.seed));
  let text = expandDeep(JSON.stringify(review));
  for (const step of steps) if (step.layer === "text") text = LAYERS.text[step.name]!(text, new Random(step.seed));
  const wire: Wire = {
    method: "POST",
    path: `/${fuzzCase.webhook}/${resourceOf(fuzzCase.kind)}`,
    headers: { "content-type": "application/json" },
    body: Buffer.from(text, "utf8"),
    chunked: false,
    abort: false,
  };
  for (const step of steps) if (step.layer === "wire") LAYERS.wire[step.name]!(wire, new Random(step.seed));
  return wire;
}

export const describeCase = (c: FuzzCase, steps: Step[] = c.steps): string =>
  `${c.webhook} ${c.kind} ${c.operation}${steps.length > 0 ? ` + ${steps.map((s) => `${s.layer}:${s.name}`).join(", ")}` : " (unmutated)"}`;
