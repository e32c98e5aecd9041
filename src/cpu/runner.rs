//! The CPU executor as the engine drives it: a large block runs on a thread of its own, so
//! that the host's work between blocks (evaluating the next block's streams, unpacking the
//! last block's trace, checking it for divergence, the caller's sink writing it out) overlaps
//! the steps instead of leaving the cores idle, as it does on the GPU.
//!
//! The steps compute the same bits either way: only where the host's work runs changes.

use std::collections::VecDeque;
use std::thread::JoinHandle;

use super::CpuExecutor;
use crate::block::{Block, BlockResult};

/// Work in a block (replicas x (synapses + neurons) x steps) from which it runs on a thread
/// of its own. Starting a thread costs some tens of microseconds; a block of this much work
/// takes the CPU path several milliseconds. Smaller blocks (one paper net: 9,000) run on the
/// caller's thread, where handing them over would cost more than the host's work they hide.
pub const OVERLAP_FROM: usize = 1 << 22;

/// A block running on its thread: the executor, the block and its results come back.
type Running = JoinHandle<(CpuExecutor, Block, BlockResult)>;

/// A [`CpuExecutor`] with at most one block running on another thread.
#[derive(Debug)]
pub struct CpuRunner {
    /// The executor, or `None` while a block runs on `running`.
    exec: Option<CpuExecutor>,
    running: Option<Running>,
    /// The step at the end of the running block.
    after: u64,
    /// Results not yet collected, in block order.
    done: VecDeque<BlockResult>,
    /// Spent blocks and trace buffers, filled again by later blocks (fresh buffers of many
    /// megabytes per block cost page faults and zeroing).
    blocks: Vec<Block>,
    traces: Vec<Vec<f32>>,
}

impl CpuRunner {
    /// A runner over `exec`, nothing running.
    pub fn new(exec: CpuExecutor) -> Self {
        CpuRunner {
            exec: Some(exec),
            running: None,
            after: 0,
            done: VecDeque::new(),
            blocks: Vec::new(),
            traces: Vec::new(),
        }
    }

    /// The executor. Blocks run only inside [`crate::Engine::run_blocks`], which collects
    /// every block it submits before it returns, so outside it none is running.
    pub fn exec(&self) -> &CpuExecutor {
        self.exec.as_ref().expect("no block runs outside Engine::run_blocks")
    }

    /// The executor, once the running block (if any) is done.
    pub fn exec_mut(&mut self) -> &mut CpuExecutor {
        self.settle();
        self.exec.as_mut().expect("settled")
    }

    /// Steps taken, including those of the running block.
    pub fn step(&self) -> u64 {
        self.exec.as_ref().map_or(self.after, |e| e.step)
    }

    /// Runs `block`: on a thread of its own when it holds at least [`OVERLAP_FROM`] work
    /// (then `block` is swapped for a spent one, which the caller fills again), else at once.
    /// A block still running from before is waited for first.
    pub fn submit(&mut self, block: &mut Block) {
        self.settle();
        let mut exec = self.exec.take().expect("settled");
        exec.spare_trace = self.traces.pop().unwrap_or_default();
        let k = exec.buffers.params;
        let work = (k.replicas as usize) * (k.n_edges + k.n) as usize * block.steps.len();
        if work < OVERLAP_FROM {
            self.done.push_back(exec.run_block(block));
            self.exec = Some(exec);
            return;
        }
        let mut owned = self.blocks.pop().unwrap_or_default();
        std::mem::swap(&mut owned, block);
        self.after = exec.step + owned.steps.len() as u64;
        self.running = Some(
            std::thread::Builder::new()
                .name("localprop-cpu".into())
                .spawn(move || {
                    let result = exec.run_block(&owned);
                    (exec, owned, result)
                })
                .expect("a thread for the CPU steps"),
        );
    }

    /// The results of the oldest block not yet collected (waiting for it if it runs), or
    /// empty ones if none was submitted.
    pub fn collect(&mut self) -> BlockResult {
        if self.done.is_empty() {
            self.settle();
        }
        self.done.pop_front().unwrap_or_default()
    }

    /// Hands a collected block's trace rows back, for a later block to fill again.
    pub fn recycle(&mut self, rows: Vec<f32>) {
        self.traces.push(rows);
    }

    /// Waits for the running block, if any; a panic on its thread goes on in the caller's.
    fn settle(&mut self) {
        if let Some(running) = self.running.take() {
            match running.join() {
                Ok((exec, block, result)) => {
                    self.exec = Some(exec);
                    self.blocks.push(block);
                    self.done.push_back(result);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    }
}
