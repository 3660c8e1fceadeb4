// SPDX-License-Identifier: MIT
// Starts app.js, an ES module, from a classic script. mosquitto's http_dir
// (2.0.11) sends files without a Content-Type, and browsers refuse to run a
// module script that is not labelled JavaScript (classic scripts like this
// one and vendor/mqtt.min.js are not checked). So the two modules are
// fetched as text and imported from blob: URLs labelled text/javascript;
// app.js's one import of './model.js' is pointed at model.js's blob.
(async () => {
	const get = async (name) => {
		const r = await fetch(name, { cache: 'no-cache' });
		if (!r.ok)
			throw new Error(`${name}: HTTP ${r.status}`);
		return r.text();
	};
	const blob = (code) => URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
	try {
		const [model, app] = await Promise.all([get('model.js'), get('app.js')]);
		await import(blob(app.replaceAll("'./model.js'", JSON.stringify(blob(model)))));
	} catch (err) {
		const s = document.getElementById('conn');
		s.dataset.state = 'error';
		s.textContent = `error: cannot start: ${err.message}`;
	}
})();
