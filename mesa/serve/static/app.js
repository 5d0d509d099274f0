// The mesa chat page: streams a turn from POST /api/turn/stream (NDJSON) and shows the labels as they settle.
// No framework and no build step: this file is served as is, so the page works offline.
"use strict";

const $ = (id) => document.getElementById(id);
const STAGE_NAMES = { user_emotion: "user emotion", strategy: "strategy", system_emotion: "system emotion" };
let threadId = localStorage.getItem("mesa.thread") || newThreadId();
let attachment = null; // {blob, name, field}
let recorder = null;

function newThreadId() {
  // getRandomValues works on plain http too (randomUUID needs a secure context).
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return "t" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // never innerHTML: replies and labels are untrusted text
  return node;
}

function scrollDown() { $("messages").scrollTop = $("messages").scrollHeight; }

function percent(confidence) {
  return typeof confidence === "number" ? ` ${Math.round(confidence * 100)}%` : "";
}

function chip(className, name, value) {
  const node = el("span", "chip " + className);
  node.append(el("b", "", name + ": "), document.createTextNode(value));
  return node;
}

function addUserMessage(text, note) {
  const node = el("div", "msg user", text || "");
  if (note) node.append(el("span", "attachment-note", note));
  $("messages").append(node);
  scrollDown();
}

function addAssistantMessage(text) {
  const node = el("div", "msg assistant");
  const labels = el("div", "labels");
  const cues = el("ul", "cues");
  const body = el("div", "reply-text", text || "");
  node.append(labels, cues, body);
  $("messages").append(node);
  scrollDown();
  return { node, labels, cues, body, streamed: false };
}

function showStage(view, stage, prediction) {
  const name = STAGE_NAMES[stage] || stage;
  const className = "label-" + stage.replace(/_/g, "-");
  const old = view.labels.querySelector("." + className);
  const node = chip(className, name, prediction.label + percent(prediction.confidence));
  if (prediction.rationale) node.title = prediction.rationale;
  old ? old.replaceWith(node) : view.labels.append(node);
}

function showSafety(view, safety) {
  const crisis = safety.level === "elevated" || safety.level === "imminent";
  const text = crisis ? `${safety.level} · ${safety.category}` : safety.level;
  const old = view.labels.querySelector(".safety");
  const node = chip("safety " + (crisis ? "safety-crisis" : "safety-ok"), "safety", text);
  old ? old.replaceWith(node) : view.labels.prepend(node);
}

function showCue(view, result) {
  const text = result.error ? `${result.cue}: unavailable (${result.error})` : `${result.cue}: ${result.clue || "—"}`;
  view.cues.append(el("li", "cue", text));
}

function showCrisisResources(resources) {
  if (!resources) return;
  if (resources.emergency) $("crisis-emergency").textContent = resources.emergency;
  const list = $("crisis-contacts");
  list.replaceChildren();
  for (const contact of resources.contacts || []) {
    const item = el("li", "contact");
    item.append(el("strong", "", contact.name + ": "));
    if (contact.phone) {
      const call = el("a", "", (contact.sms === contact.phone ? "call or text " : "call ") + contact.phone);
      call.href = "tel:" + contact.phone.replace(/[^0-9+]/g, "");
      item.append(call, document.createTextNode(" "));
    }
    if (contact.sms && contact.sms !== contact.phone) item.append(document.createTextNode(`text ${contact.sms_keyword ? contact.sms_keyword + " to " : ""}${contact.sms} `));
    if (contact.url) item.append(el("span", "", contact.url));
    if (contact.hours) item.append(document.createTextNode(` (${contact.hours})`));
    list.append(item);
  }
  $("crisis-panel").hidden = false;
  $("crisis-panel").scrollIntoView({ block: "nearest" });
}

function showReply(view, reply) {
  view.body.textContent = reply.text; // the whole reply (it may carry the AI disclosure the tokens lacked)
  if (reply.safety) showSafety(view, reply.safety);
  for (const stage of Object.keys(STAGE_NAMES)) if (reply[stage]) showStage(view, stage, reply[stage]);
  if (reply.crisis_resources) showCrisisResources(reply.crisis_resources);
  view.node.dataset.done = "true";
}

function handleEvent(view, event) {
  if (event.type === "token") {
    view.body.textContent += event.text;
    scrollDown();
  } else if (event.type === "stage" && event.prediction) {
    showStage(view, event.stage, event.prediction);
  } else if (event.type === "safety" && event.safety) {
    showSafety(view, event.safety);
  } else if (event.type === "perception" && event.perception) {
    showCue(view, event.perception);
  } else if (event.type === "reply" && event.reply) {
    showReply(view, event.reply);
  } else if (event.type === "error") {
    showError(event.message);
  }
}

function showError(message) {
  $("messages").append(el("div", "msg error", "Something went wrong: " + message));
  scrollDown();
}

async function readLines(response, onLine) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 1);
      if (line) onLine(JSON.parse(line));
    }
    if (done) return;
  }
}

function turnForm(text) {
  const form = new FormData();
  form.append("thread_id", threadId);
  if (text) form.append("text", text);
  if (attachment) form.append(attachment.field, attachment.blob, attachment.name);
  return form;
}

async function send(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text && !attachment) return;
  addUserMessage(text, attachment ? `[${attachment.field}: ${attachment.name}]` : "");
  const form = turnForm(text);
  $("text").value = "";
  setAttachment(null);
  setBusy(true);
  const view = addAssistantMessage("");
  try {
    const response = await fetch("/api/turn/stream", { method: "POST", body: form });
    if (!response.ok) {
      const detail = await response.json().catch(() => ({ error: response.statusText }));
      throw new Error(`${response.status}: ${detail.error}`);
    }
    await readLines(response, (item) => handleEvent(view, item));
  } catch (error) {
    showError(error.message);
  } finally {
    setBusy(false);
  }
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("status").textContent = busy ? "mesa is thinking…" : "";
}

function fieldFor(type) {
  if (type.startsWith("audio/")) return "audio";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("image/")) return "image";
  return null;
}

function setAttachment(value) {
  attachment = value;
  $("attachment").textContent = value ? `${value.field}: ${value.name}` : "";
  if (!value) $("file").value = "";
}

function pickFile() {
  const file = $("file").files[0];
  if (!file) return setAttachment(null);
  const field = fieldFor(file.type || "");
  if (!field) {
    showError("attach an audio, video or image file");
    return setAttachment(null);
  }
  setAttachment({ blob: file, name: file.name, field });
}

async function toggleRecording() {
  if (recorder) return recorder.stop();
  if (!navigator.mediaDevices || !window.MediaRecorder) return showError("this browser cannot record here");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    return showError("no microphone: " + error.message);
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = () => {
    stream.getTracks().forEach((track) => track.stop());
    const type = recorder.mimeType || "audio/webm";
    setAttachment({ blob: new Blob(chunks, { type }), name: "recording." + (type.includes("ogg") ? "ogg" : "webm"), field: "audio" });
    recorder = null;
    $("record").setAttribute("aria-pressed", "false");
    $("record").textContent = "● Record";
  };
  recorder.start();
  $("record").setAttribute("aria-pressed", "true");
  $("record").textContent = "■ Stop";
}

async function loadThread() {
  localStorage.setItem("mesa.thread", threadId);
  $("thread-id").textContent = threadId;
  $("messages").replaceChildren();
  $("crisis-panel").hidden = true;
  const response = await fetch("/api/threads/" + encodeURIComponent(threadId));
  if (!response.ok) return;
  const data = await response.json();
  for (const message of data.messages) {
    if (message.role === "user") {
      addUserMessage(message.text);
    } else {
      addAssistantMessage(message.text).node.dataset.done = "true";
    }
  }
}

async function showServer() {
  try {
    const info = await (await fetch("/healthz")).json();
    $("server-info").textContent = `${info.model} · ${info.mode} · ${info.taxonomy}`;
  } catch (error) {
    $("server-info").textContent = "server unreachable";
  }
}

$("composer").addEventListener("submit", send);
$("text").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
});
$("file").addEventListener("change", pickFile);
$("record").addEventListener("click", toggleRecording);
$("new-thread").addEventListener("click", () => { threadId = newThreadId(); loadThread(); });
showServer();
loadThread();
