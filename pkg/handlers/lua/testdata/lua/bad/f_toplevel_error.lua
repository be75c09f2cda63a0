local cfg = nil
local limit = cfg.limit

function register()
  return {}
end
