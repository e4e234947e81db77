#!/usr/bin/env -S node --max-semi-space-size=4
// The flag is NODE_FLAGS of src/runtime/node-flags.ts (keep them the same); started as
// `node bin/gatehouse.js`, add it yourself (npm start and npm run bench do).
import '../dist/src/cli.js';
