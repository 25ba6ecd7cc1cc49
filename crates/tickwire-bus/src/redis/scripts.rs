//! The Lua scripts: each change of bus state is one atomic script, so
//! readers never see half of it and a subscriber that receives `seq` N can
//! always find N in the stored state.

use std::sync::LazyLock;

use redis::Script;

/// Publishes one update.
///
/// `KEYS`: meta, last, hist of the topic. `ARGV`: epoch, seq, envelope,
/// history length (0: keep no history), channel, publish command
/// (`PUBLISH`, or `SPUBLISH` on a cluster).
///
/// Refuses (returns 0, changes nothing) a `seq` not above the stored one of
/// the same epoch. A new epoch deletes the history: old numbers cannot be
/// resumed under a new run. Otherwise appends trades to the stream with id
/// `0-<seq>` (`MAXLEN ~`), sets meta and last, then publishes, and returns
/// 1. Sequence numbers are compared as decimal text, exact for all of u64.
const PUBLISH: &str = r"
local epoch, seq = ARGV[1], ARGV[2]
local meta = redis.call('GET', KEYS[1])
if meta then
  local sp = string.find(meta, ' ', 1, true)
  if sp and string.sub(meta, 1, sp - 1) == epoch then
    local last = string.sub(meta, sp + 1)
    if #seq < #last or (#seq == #last and seq <= last) then
      return 0
    end
  else
    redis.call('DEL', KEYS[3])
  end
end
local keep = tonumber(ARGV[4])
if keep > 0 and seq ~= '0' then
  local id = '0-' .. seq
  local added = redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', keep, id, 'u', ARGV[3])
  if type(added) == 'table' and added.err then
    -- The stream is ahead of meta (meta was lost): start it again.
    redis.call('DEL', KEYS[3])
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', keep, id, 'u', ARGV[3])
  end
end
redis.call('SET', KEYS[1], epoch .. ' ' .. seq)
redis.call('SET', KEYS[2], ARGV[3])
redis.call(ARGV[6], ARGV[5], ARGV[3])
return 1
";

/// Sets an instrument's status and publishes it only when it changed.
///
/// `KEYS`: the status hash, whose name is also the status channel.
/// `ARGV`: instrument, `"<state> <reason>"`, publish command. Publishes
/// `"<instrument> <state> <reason>"`; returns 1 if changed, 0 if not.
const STATUS: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call(ARGV[3], KEYS[1], ARGV[1] .. ' ' .. ARGV[2])
return 1
";

/// Merges announced channels into the catalogue (never removes).
///
/// `KEYS`: the catalogue hash. `ARGV`: pairs of instrument and
/// comma-separated channels. Stores the sorted union; returns 1.
const ANNOUNCE: &str = r"
for i = 1, #ARGV, 2 do
  local seen, out = {}, {}
  local old = redis.call('HGET', KEYS[1], ARGV[i]) or ''
  for _, text in ipairs({old, ARGV[i + 1]}) do
    for c in string.gmatch(text, '[^,]+') do
      if not seen[c] then
        seen[c] = true
        out[#out + 1] = c
      end
    end
  end
  table.sort(out)
  redis.call('HSET', KEYS[1], ARGV[i], table.concat(out, ','))
end
return 1
";

/// The publish script (loaded once per process, hashed once).
pub(crate) static PUBLISH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(PUBLISH));
/// The status script.
pub(crate) static STATUS_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(STATUS));
/// The catalogue merge script.
pub(crate) static ANNOUNCE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ANNOUNCE));
