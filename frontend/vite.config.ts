import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The build lands in the Python package (git-ignored) so the gateway serves it and the wheel ships it.
// `npm run dev` proxies the API to a gateway on 127.0.0.1:8000 (`mlops up`).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../src/mlops_nocode/web/dist",
    emptyOutDir: true,
    assetsInlineLimit: 0, // every asset a file of this origin: nothing inlined as data: URLs
  },
  server: { proxy: { "/api": "http://127.0.0.1:8000", "/logout": "http://127.0.0.1:8000" } },
});
