/** kiln's version, printed by `kiln version` / `executor version` and sent in the User-Agent. */
export const KILN_VERSION = "0.1.0";
