// Regenerates jinja_chat.json: seeded random conversations rendered by @huggingface/jinja with the
// chat templates of the real Qwen3 and Llama-3 tokenizer_config.json files (from
// tools/fetch-test-assets.sh), the reference for hardkv's fixed-format renderer. Run here:
//   npm install @huggingface/jinja@0.5.11 && node make_jinja_chat.mjs "$(bash ../../../tools/fetch-test-assets.sh)"
import {Template} from '@huggingface/jinja';
import fs from 'fs';

const assets = process.argv[2];
let state = 777;
function rand() {  // mulberry32
  state = (state + 0x6D2B79F5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const contents = ['hi', '  spaced out  ', '\nleading and trailing\n', 'multi\nline\n\ntext', '',
  '<think>\nreasoning\n</think>\n\nanswer', '<think>a</think>b', 'x</think>y', '</think>',
  '<think>\n\n</think>\n\n', 'pre<think>r1</think>mid</think>post', '\n\n<think>\nr\n</think>\nans\n',
  '<tool_response>t</tool_response>', '<tool_response>\nok\n</tool_response>', 'naïve 🦙 日本',
  '\tTabbed\t'];
const cases = [];
for (const name of ['qwen3', 'llama3']) {
  const config = JSON.parse(fs.readFileSync(`${assets}/tokenizers/${name}/tokenizer_config.json`));
  const template = new Template(config.chat_template);
  const roles = name === 'qwen3' ? ['system', 'user', 'assistant', 'tool']
                                 : ['system', 'user', 'assistant', 'ipython'];
  for (let i = 0; i < 100; ++i) {
    const n = 1 + Math.floor(rand() * 6);
    const messages = [];
    for (let k = 0; k < n; ++k) messages.push({role: pick(roles), content: pick(contents)});
    const options = {add_generation_prompt: rand() < 0.7};
    const thinking = rand();
    if (thinking < 0.3) options.enable_thinking = false;
    else if (thinking < 0.5) options.enable_thinking = true;
    const expected = template.render({messages, bos_token: config.bos_token ?? '', ...options});
    cases.push({template: name, messages, ...options, expected});
  }
}
fs.writeFileSync('jinja_chat.json', JSON.stringify(
    {generator: 'make_jinja_chat.mjs', reference: '@huggingface/jinja 0.5.11', cases}) + '\n');
