// The embed example's shader: one quad per neuron, coloured by the neuron's state, read
// straight from the engine's state buffer `x` (f32, laid out [replica][neuron]).

override FIRST: u32;    // index in `x` of the first neuron drawn: replica * n + d (skips the inputs)
override COLS: u32;     // grid size in cells
override ROWS: u32;
override OUTLINED: u32; // the cell drawn with a white frame (the trained output neuron)

@group(0) @binding(0) var<storage, read> x: array<f32>;

struct Cell {
    @builtin(position) pos: vec4f,
    @location(0) uv: vec2f,
    @location(1) @interpolate(flat) value: f32,
    @location(2) @interpolate(flat) outlined: u32,
};

// Instance i is neuron FIRST + i; its 6 vertices are the two triangles of one quad.
@vertex
fn vs_main(@builtin(vertex_index) v: u32, @builtin(instance_index) i: u32) -> Cell {
    var corners = array(vec2f(0.0, 0.0), vec2f(1.0, 0.0), vec2f(0.0, 1.0), vec2f(0.0, 1.0), vec2f(1.0, 0.0), vec2f(1.0, 1.0));
    let uv = corners[v];
    // The cells tile [-0.9, 0.9]^2, row 0 at the top, each quad inset by 5% of its cell.
    let size = vec2f(1.8 / f32(COLS), 1.8 / f32(ROWS));
    let p = (vec2f(f32(i % COLS), f32(i / COLS)) + 0.05 + 0.9 * uv) * size;
    var out: Cell;
    out.pos = vec4f(-0.9 + p.x, 0.9 - p.y, 0.0, 1.0);
    out.uv = uv;
    out.value = x[FIRST + i];
    out.outlined = u32(i == OUTLINED);
    return out;
}

// Blue for -1, black for 0, orange for +1.
@fragment
fn fs_main(c: Cell) -> @location(0) vec4f {
    let edge = min(min(c.uv.x, 1.0 - c.uv.x), min(c.uv.y, 1.0 - c.uv.y));
    if c.outlined == 1u && edge < 0.08 {
        return vec4f(1.0);
    }
    let v = clamp(c.value, -1.0, 1.0);
    let rgb = max(v, 0.0) * vec3f(1.0, 0.55, 0.05) + max(-v, 0.0) * vec3f(0.15, 0.45, 1.0);
    return vec4f(rgb, 1.0);
}
