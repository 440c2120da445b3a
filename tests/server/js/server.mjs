// Starts `moe serve` on a free loopback port for a test and stops it with SIGTERM afterwards.
import { spawn } from "node:child_process";

export async function startServer(moe, model, extra = []) {
  const child = spawn(moe, ["serve", "-m", model, "--port", "0", "-t", "2", ...extra], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("moe serve did not start: " + out)), 60000);
    child.stdout.on("data", (data) => {
      out += data;
      const match = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+) /);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on("exit", (code) => reject(new Error(`moe serve exited with ${code}: ${out}`)));
  });
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    url: `http://127.0.0.1:${port}`,
    // Returns the exit code after SIGTERM.
    async stop() {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

export function requiredEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through tests/server/js/run.sh)`);
  return value;
}
