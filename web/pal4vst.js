// PAL4VST: show PAR values and a colour legend on PAL Detect / PAL Score after they run.
import { app } from "../../scripts/app.js";

const NODES = new Set(["PALDetect", "PALScore"]);
const MAGENTA = "#ff00ff";

function formatPar(message) {
  const text = message?.text?.[0];
  if (text) return text;
  const pars = message?.par ?? [];
  return pars.map((p, i) => `#${i}: PAR ${Number(p).toFixed(4)}`).join("\n");
}

app.registerExtension({
  name: "pal4vst.par",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODES.has(nodeData.name)) return;

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      this.palText = formatPar(message);
      this.palLines = this.palText ? this.palText.split("\n").slice(0, 8) : [];
      const needed = 34 + 16 * this.palLines.length;
      const size = this.computeSize();
      this.setSize([Math.max(this.size[0], size[0]), Math.max(size[1] + needed, this.size[1])]);
      this.setDirtyCanvas(true, true);
    };

    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      onDrawForeground?.apply(this, arguments);
      if (this.flags?.collapsed || !this.palLines?.length) return;
      const x = 10;
      let y = this.size[1] - 16 * this.palLines.length - 26;
      ctx.save();
      ctx.fillStyle = MAGENTA;
      ctx.fillRect(x, y, 12, 12);
      ctx.fillStyle = "#ccc";
      ctx.font = "12px sans-serif";
      ctx.fillText("artifact (PAR = artifact area / image area)", x + 18, y + 10);
      ctx.font = "12px monospace";
      for (const line of this.palLines) {
        y += 16;
        ctx.fillText(line, x, y + 10);
      }
      ctx.restore();
    };
  },
});
