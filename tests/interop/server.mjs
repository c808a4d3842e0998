// Starts an example server as a child process and learns its port from the
// line it prints when it listens (it is started with --port 0, so the OS
// picks a free port and there is no race). Used by the Node interop tests
// and the browser test.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/**
 * Spawns `bin args`, waits (10 s at most) for a stdout or stderr line that
 * matches `listening` (whose first group is the port), and returns
 * `{ port, output, stop() }`. `stop()` sends SIGTERM to that PID only and
 * waits for the exit.
 */
export function startServer(bin, args, listening, extraEnv = {}) {
  const proc = spawn(bin, args, {
    env: { ...process.env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = [];
  let exited = false;
  const exit = new Promise((resolve) => proc.once("exit", (code, signal) => {
    exited = true;
    resolve({ code, signal });
  }));
  const stop = async () => {
    if (!exited) {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exit;
      clearTimeout(timer);
    }
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`${bin} did not print its address in 10 s: ${output.join("\n")}`));
    }, 10_000);
    const onLine = (l) => {
      output.push(l);
      const m = listening.exec(l);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), output, stop });
      }
    };
    createInterface({ input: proc.stdout }).on("line", onLine);
    createInterface({ input: proc.stderr }).on("line", onLine);
    exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited (${code ?? signal}) before listening: ${output.join("\n")}`));
    });
    proc.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
