// The dashboard is served by the gateway under /app (index.html for every /app/* route,
// hashed files under /app/assets). Its Content-Security-Policy forbids inline scripts and
// styles, so nothing may be inlined into index.html.
//
// `npm run dev` serves the sources with hot reload and forwards API calls to a running
// `vre up` (VRE_URL, default http://127.0.0.1:8000). Sign in on the VRE itself first: its
// session cookie is sent to the dev server too (cookies do not depend on the port).
import { defineConfig } from "vite";

declare const process: { env: Record<string, string | undefined> }; // Node's, without @types/node

const VRE_URL = process.env.VRE_URL ?? "http://127.0.0.1:8000";
const API_PREFIXES = [
  "/auth",
  "/me",
  "/projects",
  "/invitations",
  "/provenance",
  "/search",
  "/datalake",
  "/workflows",
  "/catalogue",
  "/zenodo",
  "/ivoa",
  "/readyz",
];

export default defineConfig({
  base: "/app/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  server: {
    host: "127.0.0.1",
    proxy: Object.fromEntries(API_PREFIXES.map((prefix) => [prefix, { target: VRE_URL }])),
  },
});
