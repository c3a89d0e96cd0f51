// YAML for `-o yaml`: JSON data (objects, arrays, strings, numbers, booleans, null) as block YAML,
// the way kubectl prints objects. Strings that YAML could read as something else are written as
// JSON strings, which are valid YAML double-quoted scalars (https://yaml.org/spec/1.2.2/#731-double-quoted-style).
// Pure; no dependency, so the CLI needs none beyond what `serve` uses.

/** Plain scalars only for words that read back as the same string: no number, bool, null or indicator. */
const PLAIN = /^[A-Za-z][A-Za-z0-9._/-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|y|n|null|nan|inf)$/i;

function scalar(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return PLAIN.test(value) && !RESERVED.test(value) ? value : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

const isCollection = (value: unknown): value is object => typeof value === "object" && value !== null;
const isEmpty = (value: object): boolean => (Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0);

function lines(value: unknown, indent: string): string[] {
  if (!isCollection(value) || isEmpty(value)) return [`${indent}${isCollection(value) ? (Array.isArray(value) ? "[]" : "{}") : scalar(value)}`];
  if (Array.isArray(value)) {
    return value.flatMap((item: unknown) => {
      if (!isCollection(item) || isEmpty(item)) return [`${indent}- ${lines(item, "")[0]}`];
      // The first line of a nested block goes after the dash; the rest keep the block's indent.
      const [first, ...rest] = lines(item, `${indent}  `);
      return [`${indent}- ${first!.slice(indent.length + 2)}`, ...rest];
    });
  }
  return Object.entries(value).filter(([, v]) => v !== undefined).flatMap(([key, v]) => {
    const name = scalar(key);
    if (!isCollection(v) || isEmpty(v)) return [`${indent}${name}: ${lines(v, "")[0]}`];
    return [`${indent}${name}:`, ...lines(v, Array.isArray(v) ? indent : `${indent}  `)];
  });
}

/** `value` as a YAML document, ending with a newline. */
export function toYaml(value: unknown): string {
  return lines(value, "").join("\n") + "\n";
}
