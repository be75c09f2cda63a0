-- Loading runs in the sandbox too.
local f = io.open("/etc/passwd")

function register()
  return {}
end
