// ortrun.js SPEC.json: runs an ONNX model with ONNX Runtime for Node.js (onnxruntime-node)
// and prints the outputs as JSON. Written by control/onnxio/onnxref; tensors travel as
// base64 of little-endian float32 so that no value is rounded on the way.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  let ort;
  try {
    ort = require(path.join(spec.ort_dir, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    process.stderr.write('cannot load onnxruntime-node from ' + spec.ort_dir + ': ' + e.message + '\n');
    process.exit(3);
  }
  const session = await ort.InferenceSession.create(spec.model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const out = {
    version: ort.env.versions.node,
    input_names: session.inputNames,
    output_names: session.outputNames,
    runs: [],
  };
  for (const run of spec.runs) {
    const feeds = {};
    for (const inp of run) {
      const buf = Buffer.from(inp.data, 'base64');
      const arr = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      feeds[inp.name] = new ort.Tensor('float32', arr, inp.dims);
    }
    const results = await session.run(feeds);
    const outputs = [];
    for (const name of session.outputNames) {
      const t = results[name];
      const d = t.data;
      outputs.push({ name, dims: t.dims, data: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64') });
    }
    out.runs.push(outputs);
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(String((e && e.stack) || e) + '\n');
  process.exit(1);
});
