// The page side of the browser test: one @stomp/stompjs Client that reconnects over a list
// of brokers (a webSocketFactory that moves to the next URL after each failed or lost
// connection), a client-individual subscription that records and ACKs every body, and
// receipted SENDs. drive.mjs (puppeteer-core) calls these functions and checks the result.
"use strict";

window.tandem = (() => {
  const state = { connects: 0, brokers: [], received: new Set(), receipted: new Set(), errors: [], urlIndex: -1 };
  let client = null;

  function log(text) {
    const el = document.getElementById("log");
    el.textContent += new Date().toISOString().slice(11, 23) + " " + text + "\n";
    el.scrollTop = el.scrollHeight;
  }
  function show() {
    document.getElementById("connects").textContent = state.connects;
    document.getElementById("receipted").textContent = state.receipted.size;
    document.getElementById("received").textContent = state.received.size;
  }

  function start(urls, destination) {
    client = new StompJs.Client({
      webSocketFactory: () => {
        state.urlIndex = (state.urlIndex + 1) % urls.length;
        const url = urls[state.urlIndex];
        log("connecting to " + url);
        document.getElementById("broker").textContent = url;
        return new WebSocket(url, ["v12.stomp", "v11.stomp", "v10.stomp"]);
      },
      reconnectDelay: 100,
      heartbeatIncoming: 2000,
      heartbeatOutgoing: 2000,
      onConnect: (frame) => {
        state.connects += 1;
        state.brokers.push({ url: urls[state.urlIndex], server: frame.headers.server || "" });
        document.getElementById("state").textContent = "connected";
        log("CONNECTED version " + frame.headers.version + " server " + (frame.headers.server || "?"));
        client.subscribe(destination, (message) => {
          state.received.add(message.body);
          message.ack();
          show();
        }, { ack: "client-individual" });
        show();
      },
      onWebSocketClose: () => {
        document.getElementById("state").textContent = "reconnecting";
      },
      onStompError: (frame) => {
        state.errors.push(frame.headers.message || "ERROR");
        log("ERROR " + frame.headers.message);
      },
    });
    client.activate();
  }

  // Sends `count` persistent messages "<prefix>-<i>" with a receipt each; resolves with the
  // bodies whose RECEIPT arrived within timeoutMs (a loss makes their receipts never come).
  function sendBatch(prefix, count, timeoutMs) {
    const pending = [];
    for (let i = 0; i < count; i++) {
      const body = prefix + "-" + i;
      const receipt = "r-" + body;
      pending.push(new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), timeoutMs);
        client.watchForReceipt(receipt, () => {
          clearTimeout(timer);
          state.receipted.add(body);
          show();
          resolve(body);
        });
      }));
      client.publish({ destination: "/queue/browser", body, headers: { persistent: "true", receipt } });
    }
    return Promise.all(pending).then((bodies) => bodies.filter((b) => b !== null));
  }

  function connected() { return client !== null && client.connected; }
  function snapshot() {
    return { connects: state.connects, brokers: state.brokers, received: [...state.received],
             receipted: [...state.receipted], errors: state.errors };
  }
  return { start, sendBatch, connected, snapshot, log };
})();
