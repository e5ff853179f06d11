/**
 * Extracts the mount points (5th field) from `/proc/self/mountinfo` text, decoding the kernel's octal
 * escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash). Malformed lines are ignored.
 */
export function parseMountinfo(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    const mp = fields[4];
    if (fields.length < 5 || mp === undefined || mp === "") continue;
    out.push(unescapeOctal(mp));
  }
  return out;
}

function unescapeOctal(s: string): string {
  if (!s.includes("\\")) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, "utf8");
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] as number;
    if (b === 0x5c) {
      const oct = raw.subarray(i + 1, i + 4).toString("latin1");
      if (/^[0-7]{3}$/.test(oct)) {
        bytes.push(parseInt(oct, 8) & 0xff);
        i += 3;
        continue;
      }
    }
    bytes.push(b);
  }
  return Buffer.from(bytes).toString("utf8");
}
