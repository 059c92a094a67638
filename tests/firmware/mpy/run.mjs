// Runs test modules under real MicroPython (the WebAssembly port); exits 1 on any failure.
// usage: node run.mjs <repo root> <module>... [--steps=<module>:<count>]
// (modules from tests/firmware, without .py)
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
    } else if (/\.(py|json|bin|example)$/.test(name)) {
      mp.FS.writeFile("/repo/" + rel + "/" + name, readFileSync(src));
    }
  }
}
for (const rel of ["firmware", "tests/firmware", "tests/vectors"]) copy(rel);
mp.FS.chdir("/repo");

// "--steps=<module>:<count>": call <module>.setup(), then <module>.step(i) once per
// runPython call, then <module>.check(). This port's GC frees garbage only between
// runPython calls (within one call gc.collect() reclaims nothing), so a heap-drift test
// has to measure at the start of separate calls.
const steps = modules.filter((m) => m.startsWith("--steps=")).map((m) => m.slice(8).split(":"));
const plain = modules.filter((m) => !m.startsWith("--steps="));
try {
  mp.runPython(`import sys\nsys.path[:0] = ["/repo", "/repo/tests/firmware"]\n`);
  if (plain.length) {
    mp.runPython(`MODULES = ${JSON.stringify(plain)}\n` +
      readFileSync(join(root, "tests/firmware/mpy/harness.py"), "utf8"));
  }
  for (const [mod, count] of steps) {
    mp.runPython(`import ${mod}\n${mod}.setup()`);
    for (let i = 0; i < Number(count); i++) mp.runPython(`${mod}.step(${i})`);
    mp.runPython(`${mod}.check()`);
  }
} catch (error) {
  if (error.name !== "PythonError") throw error;
  console.error(error.message);
  process.exit(1);
}
