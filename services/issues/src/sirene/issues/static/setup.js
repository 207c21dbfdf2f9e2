// Password set-up page: the link carries the one-time code in its fragment (never sent to a
// server, so never in a request log); move it into the form and out of the address bar.
(function () {
  "use strict";
  const field = document.getElementById("code");
  const match = /(?:^|[#&])code=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (field && match && !field.value) field.value = match[1];
  if (match) history.replaceState(null, "", location.pathname + location.search);
  const errors = document.getElementById("fehler");
  if (errors) errors.focus();
  else if (field && field.value) document.getElementById("password").focus();
})();
