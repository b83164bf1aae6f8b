/* The dashboard: one Socket.IO connection for monitoring (config, presence, metrics) and one per node panel. */
/* global io, Chart, document, location, URLSearchParams */
(() => {
  'use strict';
  const WINDOW = 20;
  const COLORS = { direct: '#e8590c', pubsub: '#1c7ed6' };
  const socketOptions = { transports: ['websocket', 'polling'] };
  const params = new URLSearchParams(location.search);
  const initialNodes = (params.get('nodes') || 'A,B')
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const panels = new Map();
  let knownNodes = [];

  const $ = (selector, root = document) => root.querySelector(selector);
  const monitor = io(socketOptions);

  // ---------- charts ----------
  Chart.defaults.font.size = 13;
  Chart.defaults.color = '#4a5368';
  const chartOptions = (unit) => ({
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: 'index', intersect: false },
    scales: {
      y: { beginAtZero: true, title: { display: true, text: unit } },
      x: { ticks: { maxTicksLimit: 6 } },
    },
    plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
  });
  const line = (label, color, dashed) => ({
    label,
    data: [],
    borderColor: color,
    backgroundColor: color + '22',
    borderDash: dashed ? [5, 4] : [],
    tension: 0.3,
    pointRadius: 2,
    fill: !dashed,
  });
  const latencyChart = new Chart($('#latency-chart'), {
    type: 'line',
    data: {
      labels: [],
      datasets: [
        line('direct avg', COLORS.direct),
        line('pubsub avg', COLORS.pubsub),
        line('direct p99', COLORS.direct, true),
        line('pubsub p99', COLORS.pubsub, true),
      ],
    },
    options: chartOptions('ms'),
  });
  const throughputChart = new Chart($('#throughput-chart'), {
    type: 'line',
    data: { labels: [], datasets: [line('direct', COLORS.direct), line('pubsub', COLORS.pubsub)] },
    options: chartOptions('msg/s'),
  });
  const push = (chart, label, values) => {
    chart.data.labels.push(label);
    values.forEach((v, i) => chart.data.datasets[i].data.push(v));
    if (chart.data.labels.length > WINDOW) {
      chart.data.labels.shift();
      chart.data.datasets.forEach((d) => d.data.shift());
    }
    chart.update('none');
  };

  // ---------- counters ----------
  const ROWS = [
    ['sent', 'sent'],
    ['delivered', 'delivered'],
    ['lost', 'lost'],
    ['delivery rate', (m) => (m.sent ? ((100 * m.delivered) / m.sent).toFixed(1) + ' %' : '–')],
    ['retries', 'retries'],
    ['duplicates dropped', 'duplicates'],
    ['delivery_failed', 'failed'],
    ['avg latency', (m) => m.avg_latency_ms.toFixed(1) + ' ms'],
    ['p50 latency', (m) => m.p50_latency_ms.toFixed(1) + ' ms'],
    ['p99 latency', (m) => m.p99_latency_ms.toFixed(1) + ' ms'],
    ['throughput', (m) => m.throughput.toFixed(1) + ' /s'],
  ];
  const renderCounters = (metrics) => {
    const body = $('#counters tbody');
    body.innerHTML = '';
    for (const [label, read] of ROWS) {
      const row = document.createElement('tr');
      const value = (m) => (typeof read === 'function' ? read(m) : String(m[read]));
      row.innerHTML = `<td>${label}</td><td></td><td></td>`;
      row.children[1].textContent = value(metrics.direct);
      row.children[2].textContent = value(metrics.pubsub);
      body.appendChild(row);
    }
  };

  monitor.on('connect', () => setBadge($('#conn'), true, 'connected'));
  monitor.on('disconnect', () => setBadge($('#conn'), false, 'disconnected'));
  monitor.on('metrics_update', (metrics) => {
    const label = new Date(metrics.at).toLocaleTimeString();
    push(latencyChart, label, [
      metrics.direct.avg_latency_ms,
      metrics.pubsub.avg_latency_ms,
      metrics.direct.p99_latency_ms,
      metrics.pubsub.p99_latency_ms,
    ]);
    push(throughputChart, label, [metrics.direct.throughput, metrics.pubsub.throughput]);
    renderCounters(metrics);
    $('#replicas').textContent = `replicas: ${metrics.replicas}`;
  });

  // ---------- config ----------
  const form = $('#config-form');
  const fillConfig = (config) => {
    for (const [name, value] of Object.entries(config)) {
      const input = form.elements.namedItem(name);
      if (input && document.activeElement !== input) input.value = value === null ? '' : value;
    }
  };
  monitor.on('config_updated', (config) => {
    fillConfig(config);
    status($('#config-status'), 'good', 'config in effect on every replica');
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const update = {};
    for (const input of form.querySelectorAll('input')) {
      if (input.name === 'seed') update.seed = input.value === '' ? null : Number(input.value);
      else update[input.name] = Number(input.value);
    }
    const answer = await monitor.emitWithAck('update_config', update);
    if (answer.ok) status($('#config-status'), 'good', 'applied');
    else status($('#config-status'), 'error', `${answer.error.field ?? ''}: ${answer.error.message}`);
  });
  $('#reset-metrics').addEventListener('click', () => monitor.emit('reset_metrics', {}, () => undefined));

  // ---------- presence ----------
  monitor.on('presence', (update) => {
    knownNodes = update.nodes.map((n) => n.node);
    for (const panel of panels.values()) panel.refreshTargets(update.away);
  });

  // ---------- node panels ----------
  function addPanel(name) {
    if (panels.has(name)) return;
    const element = $('#node-template').content.firstElementChild.cloneNode(true);
    $('.node-name', element).textContent = `Node ${name}`;
    element.dataset.node = name;
    const radios = element.querySelectorAll('.methods input');
    radios.forEach((r) => (r.name = `method-${name}`));
    $('#nodes').appendChild(element);
    const log = $('.log', element);
    const state = $('.node-state', element);
    const select = $('.to', element);
    let socket;
    const seen = new Set();

    const entry = (tag, kind, text, meta) => {
      const li = document.createElement('li');
      li.innerHTML = '<span class="tag"></span><span class="text"></span><span class="meta"></span>';
      li.children[0].textContent = tag;
      li.children[0].classList.add(kind);
      li.children[1].textContent = text;
      li.children[2].textContent = meta || new Date().toLocaleTimeString();
      log.prepend(li);
      while (log.children.length > 200) log.lastChild.remove();
    };

    const refreshTargets = (away = []) => {
      const current = select.value;
      const targets = [...new Set([...knownNodes, ...panels.keys(), ...away])].filter((n) => n !== name);
      select.innerHTML = '';
      for (const target of [...targets, '*']) {
        const option = document.createElement('option');
        option.value = target;
        option.textContent = target === '*' ? 'everyone (*)' : `to ${target}`;
        select.appendChild(option);
      }
      // keep the user's choice; the default follows the first other node as nodes come and go
      if (select.dataset.chosen && [...select.options].some((o) => o.value === current))
        select.value = current;
    };

    const register = () => {
      socket?.close();
      socket = io(socketOptions);
      socket.on('message', (m) => {
        if (seen.has(m.msg_id)) return;
        seen.add(m.msg_id);
        const extra = m.method === 'pubsub' ? ` · #${m.seq} · try ${m.attempt}` : '';
        entry(
          m.method,
          m.method,
          `${m.from} → ${m.content}`,
          `${m.latency_ms} ms${extra}${m.recovered ? ' · recovered' : ''}`,
        );
      });
      socket.on('pubsub_message', (m) => {
        socket.emit('pubsub_ack', { msg_id: m.msg_id, node: name }, () => undefined);
        if (m.attempt > 1) entry('retry', 'info', `${m.from}: attempt ${m.attempt} of #${m.seq}`);
      });
      socket.on('delivery_failed', (f) =>
        entry('failed', 'fail', `#${f.seq} to ${f.recipient} after ${f.attempts} attempts`),
      );
      socket.on('disconnect', () => setBadge(state, false, 'disconnected'));
      socket.on('connect', async () => {
        const answer = await socket.emitWithAck('register', { node: name });
        if (!answer.ok) {
          setBadge(state, false, answer.error.code);
          entry('error', 'fail', answer.error.message);
          return;
        }
        setBadge(state, true, `registered · ${answer.replica}`);
        const recovery = $('.recovery', element);
        if (answer.recovered)
          status(recovery, 'good', `recovered: ${answer.missed} missed pubsub message(s) follow`);
        else status(recovery, '', answer.missed ? `${answer.missed} stored message(s) follow` : '');
      });
    };

    const send = async (content) => {
      if (!socket?.connected) {
        entry('error', 'fail', 'register first');
        return;
      }
      const method = [...radios].find((r) => r.checked).value;
      const answer = await socket.emitWithAck('send_message', {
        from: name,
        to: select.value,
        method,
        content,
      });
      if (!answer.ok) entry('refused', 'fail', `${answer.error.code}: ${answer.error.message}`);
      else entry('sent', 'info', `${method} → ${select.value}: ${content}`);
    };

    select.addEventListener('change', () => (select.dataset.chosen = '1'));
    $('.register', element).addEventListener('click', register);
    $('.remove', element).addEventListener('click', () => {
      socket?.close();
      element.remove();
      panels.delete(name);
      for (const panel of panels.values()) panel.refreshTargets();
    });
    $('.send', element).addEventListener('submit', (event) => {
      event.preventDefault();
      const input = $('.content', element);
      const content = input.value.trim() || `hello from ${name}`;
      input.value = '';
      void send(content);
    });
    $('.burst', element).addEventListener('click', () => {
      for (let i = 1; i <= 20; i++) void send(`burst ${i}`);
    });
    panels.set(name, { refreshTargets });
    for (const panel of panels.values()) panel.refreshTargets();
    if (params.get('register') === '1') register();
  }

  $('#add-node').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#new-node');
    if (input.checkValidity() && input.value) addPanel(input.value);
    input.value = '';
  });

  function setBadge(element, on, text) {
    element.textContent = text;
    element.classList.toggle('badge-on', on);
    element.classList.toggle('badge-off', !on);
  }
  function status(element, kind, text) {
    element.textContent = text;
    element.className = `${element.className.split(' ')[0]} ${kind}`;
  }

  initialNodes.forEach(addPanel);
})();
