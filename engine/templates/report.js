// The script of report.html, inlined into the page: the executions filters (also prefilled from the
// address, ?q=&outcome=&class=), opening what a #fragment points into, and the copy buttons. It marks
// <body data-script="ok"> when it ran cleanly (the browser test checks that).
(function () {
  var body = document.body;
  window.addEventListener('error', function (event) { body.setAttribute('data-script', 'error: ' + event.message); });
  try {
    var rows = Array.prototype.slice.call(document.querySelectorAll('table.executions tbody tr.exec'));
    var text = document.getElementById('filter-text');
    var outcome = document.getElementById('filter-outcome');
    var klass = document.getElementById('filter-class');
    var count = document.getElementById('filter-count');
    var apply = function () {
      var query = text.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (row) {
        var ok = (!outcome.value || row.getAttribute('data-outcome') === outcome.value) &&
          (!klass.value || row.getAttribute('data-class') === klass.value) &&
          (!query || row.textContent.toLowerCase().indexOf(query) >= 0);
        row.hidden = !ok;
        if (ok) { shown += 1; }
      });
      count.textContent = shown === rows.length ? rows.length + ' executions' : shown + ' of ' + rows.length + ' executions shown';
    };
    [text, outcome, klass].forEach(function (element) {
      element.addEventListener('input', apply);
      element.addEventListener('change', apply);
    });
    var reveal = function () {
      var id = decodeURIComponent(location.hash.slice(1));
      var target = id ? document.getElementById(id) : null;
      if (!target) { return; }
      if (target.hidden) { text.value = ''; outcome.value = ''; klass.value = ''; apply(); }
      for (var node = target; node; node = node.parentElement) {
        if (node.tagName === 'DETAILS') { node.open = true; }
      }
      target.scrollIntoView({ block: 'center' });
    };
    window.addEventListener('hashchange', reveal);
    document.addEventListener('click', function (event) {
      var button = event.target.closest ? event.target.closest('button.copy') : null;
      if (!button) { return; }
      var code = button.parentNode.querySelector('code');
      var done = function (ok) {
        button.textContent = ok ? 'Copied' : 'Press Ctrl+C';
        setTimeout(function () { button.textContent = 'Copy'; }, 1600);
      };
      var fallback = function () {
        var range = document.createRange();
        range.selectNodeContents(code);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        var ok = false;
        try { ok = document.execCommand('copy'); } catch (error) { ok = false; }
        done(ok);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(code.textContent).then(function () { done(true); }, fallback);
      } else {
        fallback();
      }
    });
    // Filters can come with the address: report.html?q=movies&outcome=fail&class=crash
    if (window.URLSearchParams && location.search) {
      var params = new URLSearchParams(location.search);
      text.value = params.get('q') || '';
      outcome.value = params.get('outcome') || '';
      klass.value = params.get('class') || '';
    }
    apply();
    if (location.hash) { reveal(); }
    // A service's log shows its last lines first: where the error is.
    var toBottom = function (details) {
      details.querySelectorAll('pre.log').forEach(function (log) { log.scrollTop = log.scrollHeight; });
    };
    document.querySelectorAll('details.said').forEach(function (details) {
      toBottom(details);
      details.addEventListener('toggle', function () { toBottom(details); });
    });
    if (!body.hasAttribute('data-script')) { body.setAttribute('data-script', 'ok'); }
  } catch (error) {
    body.setAttribute('data-script', 'error: ' + error);
  }
})();
