// Validates an AsyncAPI document with the AsyncAPI Initiative's parser (@asyncapi/parser):
// the JSON Schema of the spec plus its semantic rules (operations' messages belong to their
// channel, references resolve, ..). Usage: node validate.cjs FILE. Exit 1 on any error.
const fs = require("fs");
const { Parser } = require("@asyncapi/parser");

async function main() {
  const file = process.argv[2];
  const text = fs.readFileSync(file, "utf8");
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text);
  const errors = diagnostics.filter((d) => d.severity === 0);
  for (const d of diagnostics) {
    const level = ["error", "warning", "info", "hint"][d.severity] || d.severity;
    console.log(`${level}: ${d.code}: ${d.message} at /${(d.path || []).join("/")}`);
  }
  if (errors.length > 0 || !document) {
    console.log(`INVALID: ${errors.length} error(s)`);
    process.exit(1);
  }
  const channels = document.channels().all().map((c) => c.id());
  const messages = document.allMessages().all().length;
  console.log(`VALID: asyncapi ${document.version()}, channels ${channels.join(",")}, ${messages} messages`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
