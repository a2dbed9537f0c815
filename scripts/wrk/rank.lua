-- Rank lookups of random players of loadgen's population (p-00000000 ...), so the api's single
-- flight never merges two of them; prints wrk's summary like report.lua.
-- Environment: BOARD (the board), PLAYERS (population size).
local board = os.getenv("BOARD")
local players = tonumber(os.getenv("PLAYERS") or "1000000")
request = function()
  return wrk.format("GET", string.format("/v1/boards/%s/players/p-%08d", board, math.random(0, players - 1)))
end
dofile(os.getenv("REPORT_LUA"))
