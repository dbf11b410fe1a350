"""The page ``curate view`` serves: one HTML file, no external assets (it works offline, on 127.0.0.1).

Filters live in the URL (``?reason=lang.mixed&status=rejected&sample=…&compare=1``), so a view is a link
and a headless browser can open any state directly.
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>curate view · __TITLE__</title>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2328}
 header{background:#24292f;color:#fff;padding:8px 14px}
 header b{font-size:16px} #summary{opacity:.8;margin-left:10px}
 #filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end;padding:8px 14px;background:#f6f8fa;
   border-bottom:1px solid #d0d7de}
 #filters label{display:flex;flex-direction:column;font-size:12px;color:#57606a}
 #filters input{width:70px} #filters select{max-width:260px}
 main{display:grid;grid-template-columns:minmax(380px,38%) 1fr;height:calc(100vh - 110px)}
 #list{overflow:auto;border-right:1px solid #d0d7de} #detail{overflow:auto;padding:10px 14px}
 table{border-collapse:collapse;width:100%} th,td{padding:3px 6px;text-align:left;font-size:12.5px}
 tr.row{cursor:pointer;border-bottom:1px solid #eaeef2} tr.row:hover{background:#f3f6fa}
 tr.row.sel{background:#ddf4ff} .ok{color:#1a7f37;font-weight:600} .bad{color:#cf222e;font-weight:600}
 .reasons{color:#57606a;font-size:11.5px} mark.flag{padding:0 1px;border-radius:2px}
 .prompt{margin-bottom:8px;padding:6px;background:#fff8c5;border-radius:4px;white-space:pre-wrap}
 button{cursor:pointer} #count{font-size:12px;color:#57606a;padding:4px 6px}
 .legend mark{margin-right:6px}
</style></head>
<body>
<header><b>curate view</b> <span id="ref">__TITLE__</span><span id="summary"></span></header>
<form id="filters" onsubmit="apply();return false">
 <label>reason<select id="reason"><option value="">any</option></select></label>
 <label>prompt<select id="prompt"><option value="">any</option></select></label>
 <label>verdict<select id="status"><option value="">any</option><option>accepted</option>
   <option>rejected</option></select></label>
 <label>pass rate ≥<input id="min_pass" type="number" step="0.05" min="0" max="1"></label>
 <label>pass rate ≤<input id="max_pass" type="number" step="0.05" min="0" max="1"></label>
 <label>length ≥<input id="min_len" type="number" min="0"></label>
 <label>length ≤<input id="max_len" type="number" min="0"></label>
 <button type="submit" id="apply">filter</button>
 <button type="button" id="compare" onclick="compare()">accepted vs rejected of this prompt</button>
 <span class="legend"><mark style="background:#ffe58f">readability</mark><mark style="background:#ffd8b5">language
   </mark></span>
</form>
<main><div id="list"><div id="count">loading…</div><table><thead><tr><th>sample</th><th>prompt</th>
 <th>verdict / reasons</th><th>pass</th><th>length</th></tr></thead><tbody id="rows"></tbody></table></div>
 <div id="detail"><p>Pick a sample to read its whole trace; flagged spans are highlighted.</p></div></main>
<script>
const KEYS=["reason","prompt","status","min_pass","max_pass","min_len","max_len"];
const state=Object.fromEntries(new URLSearchParams(location.search));
const $=id=>document.getElementById(id);
const ENT={"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"};
function esc(s){return String(s??"").replace(/[&<>"']/g,c=>ENT[c])}
function sync(){const p=new URLSearchParams();for(const[k,v]of Object.entries(state))if(v)p.set(k,v);
  history.replaceState(null,"","?"+p.toString())}
async function facets(){const f=await (await fetch("api/facets")).json();
  $("summary").textContent=` · ${f.rows} samples, ${f.accepted} accepted`;
  for(const r of f.reasons)$("reason").add(new Option(`${r.reason} (${r.n})`,r.reason));
  for(const p of f.prompts)$("prompt").add(new Option(
    `${p.prompt_id} (${p.accepted}/${p.n}${p.pass_rate==null?"":", pass "+p.pass_rate.toFixed(2)})`,p.prompt_id));
  for(const k of KEYS)if(state[k])$(k).value=state[k];}
async function load(){const p=new URLSearchParams();for(const k of KEYS)if(state[k])p.set(k,state[k]);
  const d=await (await fetch("api/samples?"+p)).json();
  $("count").textContent=`${d.total} samples`+(d.total>d.rows.length?` (first ${d.rows.length})`:"");
  $("rows").innerHTML=d.rows.map(r=>`<tr class="row" data-id="${esc(r.sample_id)}" data-prompt="${esc(r.prompt_id)}"
   data-accepted="${r.accepted}" data-reasons="${esc(r.reasons.join(" "))}" data-pass="${r.pass_rate??""}"
   data-length="${r.length}"><td>${esc(r.sample_id.slice(0,10))}</td><td>${esc(r.prompt_id)}</td>
   <td>${r.accepted?'<span class="ok">accepted</span>':'<span class="bad">rejected</span>'}
   <div class="reasons">${esc(r.reasons.join(", "))}</div></td>
   <td>${r.pass_rate==null?"–":r.pass_rate.toFixed(2)}</td><td>${r.length}</td></tr>`).join("");
  for(const tr of document.querySelectorAll("tr.row"))tr.onclick=()=>show(tr.dataset.id,tr.dataset.prompt);
  if(state.sample)mark(state.sample);}
function mark(id){for(const tr of document.querySelectorAll("tr.row"))tr.classList.toggle("sel",tr.dataset.id===id)}
async function show(id,prompt){state.sample=id;if(prompt)state.cmp_prompt=prompt;delete state.compare;sync();mark(id);
  $("detail").innerHTML=await (await fetch("api/sample/"+encodeURIComponent(id))).text();}
async function compare(){const first=document.querySelector("tr.row");
  const prompt=state.prompt||state.cmp_prompt||(first?first.dataset.prompt:"");
  if(!prompt){$("detail").innerHTML="<p>No prompt to compare.</p>";return}
  state.compare="1";state.cmp_prompt=prompt;sync();
  const q=new URLSearchParams({prompt,reason:state.reason||"",sample:state.sample||""});
  $("detail").innerHTML=await (await fetch("api/compare?"+q)).text();}
function apply(){for(const k of KEYS)state[k]=$(k).value;delete state.sample;sync();load()}
(async()=>{await facets();await load();
  if(state.compare)await compare();else if(state.sample)await show(state.sample);
  document.body.dataset.ready="1";})();
</script></body></html>
"""
