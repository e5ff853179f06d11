import { createSign } from "node:crypto";

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/** A compact JWS signed with RS256 (RSASSA-PKCS1-v1_5 over SHA-256) by a PEM private key. */
export function signRs256Jwt(header: Record<string, unknown>, claims: Record<string, unknown>, pemKey: string): string {
  const input = `${b64url(JSON.stringify({ alg: "RS256", typ: "JWT", ...header }))}.${b64url(JSON.stringify(claims))}`;
  const signer = createSign("RSA-SHA256");
  signer.update(input);
  return `${input}.${b64url(signer.sign(pemKey))}`;
}
