-- Rank lookups of uniformly random players p-00000000 .. p-(PLAYERS-1) on BOARD.
local players = tonumber(os.getenv("PLAYERS") or "10000000")
local board = os.getenv("BOARD") or "global"
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/v1/boards/%s/players/p-%08d", board, math.random(0, players - 1)))
end
dofile(os.getenv("REPORT_LUA"))
