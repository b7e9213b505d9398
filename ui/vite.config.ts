import { defineConfig } from "vite";

// The desktop shell embeds `dist/` (see tauri.conf.json `build.frontendDist`).
export default defineConfig({
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // WebKitGTK 2.40+ (Debian 12) handles ES2021 well.
    target: "es2021",
    sourcemap: false,
  },
});
