/**
 * The JSON object held in manifest annotation `name`, as an untyped record for the caller to check
 * field by field. Undefined when the annotation is absent, is not JSON, or is not a JSON object
 * (arrays count as objects here, as `typeof` says; callers check the fields they need).
 */
export function jsonAnnotation(
  annotations: Readonly<Record<string, string>> | undefined,
  name: string,
): Record<string, unknown> | undefined {
  const text = annotations?.[name];
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  return v && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
}
