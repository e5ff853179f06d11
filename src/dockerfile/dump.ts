import { parseAst, type AstNode } from "./ast.js";
import { goQuote, goTrimSpace } from "./go-quote.js";

/** BuildKit `Node.Dump()` of one instruction node, without the surrounding parentheses. */
export function dumpNode(node: AstNode): string {
  let s = node.value.toLowerCase();
  if (node.flags.length > 0) s += " [" + node.flags.map(goQuote).join(" ") + "]";
  for (const arg of node.args) {
    s += " " + (arg.child ? `(${dumpNode(arg.child)})` : goQuote(arg.value));
  }
  return goTrimSpace(s);
}

/**
 * The AST of `text` in BuildKit's `result` golden-file format: one `(instruction …)` line per
 * instruction, each ending in a newline. Throws DockerfileError when the text does not parse.
 */
export function dumpAst(text: string): string {
  return parseAst(text)
    .children.map((c) => `(${dumpNode(c)})\n`)
    .join("");
}
