// Runs test modules under real MicroPython (the WebAssembly port); exits 1 on any failure.
// usage: node run.mjs <repo root> <module>...   (modules from tests/firmware, without .py)
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const [root, ...modules] = process.argv.slice(2);
const mp = await loadMicroPython({
  heapsize: 4 * 1024 * 1024,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

// Mirror the folders the tests need into MicroPython's file system, under the same paths.
function copy(rel) {
  mp.FS.mkdirTree("/repo/" + rel);
  for (const name of readdirSync(join(root, rel))) {
    const src = join(root, rel, name);
    if (statSync(src).isDirectory()) {
      if (name !== "node_modules" && name !== "__pycache__" && name !== "mpy") copy(rel + "/" + name);
    } else if (/\.(py|json|bin)$/.test(name)) {
      mp.FS.writeFile("/repo/" + rel + "/" + name, readFileSync(src));
    }
  }
}
for (const rel of ["firmware", "tests/firmware", "tests/vectors"]) copy(rel);
mp.FS.chdir("/repo");

try {
  mp.runPython(`import sys\nsys.path[:0] = ["/repo", "/repo/tests/firmware"]\nMODULES = ${JSON.stringify(modules)}\n` +
    readFileSync(join(root, "tests/firmware/mpy/harness.py"), "utf8"));
} catch (error) {
  if (error.name !== "PythonError") throw error;
  console.error(error.message);
  process.exit(1);
}
