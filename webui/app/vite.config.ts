// Builds the browser app for cordon-webd (docs/webui.md, "Browser app").
// The CSP is `default-src 'self'; script-src 'self'`: everything is emitted as files
// (no inline script or style), and nothing is fetched from elsewhere at run time.
// Fixed file names: webd sends `Cache-Control: no-cache`, so hashes buy nothing.
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist', // the build passes --outDir build/webui-app
    emptyOutDir: true,
    sourcemap: false,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    rollupOptions: {
      output: {
        entryFileNames: 'app.js',
        chunkFileNames: 'app-[name].js',
        assetFileNames: 'app[extname]',
      },
    },
  },
});
