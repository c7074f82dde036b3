// Runs inside each page once it has loaded and MathJax has finished; returns a list of
// [kind, detail] pairs for what a reader would see broken.
(() => {
  const problems = [];
  const skip = "script, style, pre, code, textarea, mjx-container, .highlight, .MathJax, mjx-assistive-mml";

  // Literal dollar signs in the text: math that the Markdown parser did not recognise.
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue;
    const at = text.indexOf("$");
    if (at < 0 || !node.parentElement || node.parentElement.closest(skip)) continue;
    const around = text.slice(Math.max(0, at - 40), at + 40).replace(/\s+/g, " ");
    problems.push(["unrendered math", `a literal '$' in the text: "…${around}…"`]);
  }
  // Math that MathJax did not typeset at all (its script missing or failed).
  for (const element of document.querySelectorAll(".math")) {
    if (!element.querySelector("mjx-container") && !element.closest("mjx-container")) {
      problems.push(["unrendered math", `not typeset: ${element.textContent.trim().slice(0, 80)}`]);
    }
  }
  // TeX that MathJax could not parse.
  for (const element of document.querySelectorAll("mjx-merror, [data-mjx-error]")) {
    const message = element.getAttribute("data-mjx-error") || element.textContent;
    problems.push(["MathJax error", message.trim().slice(0, 120)]);
  }

  // Widget areas: a saved ipywidgets view, or the static picture that replaces one.
  const areas = new Set();
  for (const script of document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    areas.add(script.parentElement);
  }
  for (const element of document.querySelectorAll(".jupyter-widgets, .widget-area, .course-widget-static")) {
    areas.add(element);
  }
  for (const area of areas) {
    const box = area.getBoundingClientRect();
    const shows = area.innerText.trim().length > 0 || area.querySelector("img, svg, canvas");
    if (!shows || box.height < 20) {
      problems.push(["empty widget area", `${area.tagName.toLowerCase()}.${area.className}: ${Math.round(box.height)} px high, nothing drawn`]);
    }
  }
  // nbgrader's solution markers, which belong to the notebooks' tooling, not to a reader.
  for (const block of document.querySelectorAll(".cell_input pre")) {
    const marker = block.textContent.match(/### (BEGIN|END) (SOLUTION|HIDDEN TESTS)/);
    if (marker) problems.push(["solution marker", `'${marker[0]}' in a code cell`]);
  }
  // One cell's printed output split over several boxes (one per print call).
  for (const output of document.querySelectorAll(".cell_output")) {
    const boxes = [...output.children];
    for (let i = 1; i < boxes.length; i++) {
      if (boxes[i].matches(".output.stream") && boxes[i - 1].matches(".output.stream")) {
        const first = boxes[0].textContent.trim().split("\n")[0].slice(0, 60);
        problems.push(["split output", `${boxes.length} output boxes in one cell, starting "${first}"`]);
        break;
      }
    }
  }
  return JSON.stringify(problems);
})()
